import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';

export interface ReceivedRequest {
  path: string;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

/** A status, or a status with response headers (`Retry-After`). */
export type ScriptedAnswer = number | { status: number; headers: Record<string, string> };

/**
 * An alert receiver on 127.0.0.1 (a port the OS picks): records every POST and answers with the
 * next answer of `script` (200 once the script is used up).
 */
export async function startReceiver(t: Test, script: ScriptedAnswer[] = []): Promise<{ url: string; received: ReceivedRequest[]; script: ScriptedAnswer[] }> {
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
      const answer = script.shift() ?? 200;
      if (typeof answer === 'number') res.statusCode = answer;
      else res.writeHead(answer.status, answer.headers);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // The notifier's keep-alive connections would hold close() open for seconds.
        server.closeAllConnections();
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/secret-token`, received, script };
}

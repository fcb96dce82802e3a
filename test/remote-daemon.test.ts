import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startApiServer } from '../daemon/api-server.js';
import { fixedTokens } from './helpers/api.js';
import { exampleFiles, openDaemon } from './helpers/daemon.js';
import { cloneRepo, commitFiles, git, gitOut, makeBareRemote } from './helpers/git-fixtures.js';
import { startGitHttpServer } from './helpers/git-http-server.js';
import { tenantYaml } from './helpers/tenants.js';

const SEED = { tier: 'professional', region: 'eastus', cloudProvider: 'AZURE', configuration: { databaseSize: 'GP_Gen5_2', storageGb: 100, enableHa: true } };

t.test('against a remote over http: a token, status pushed back, API writes racing outside pushes all land, never forced', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'tenantd-remote-'));
  const projects = path.join(dir, 'projects');
  await fsp.mkdir(projects);
  const bare = await makeBareRemote(projects, 'tenants.git', await exampleFiles());
  const server = await startGitHttpServer(projects, { auth: { token: 'git-token-123' } });
  const url = `${server.url}/tenants.git`;
  const { daemon } = await openDaemon(url, path.join(dir, 'data'), ['--git-token', 'git-token-123']);
  const api = await startApiServer(daemon, { host: '127.0.0.1', port: 0, auth: fixedTokens });
  t.teardown(async () => {
    await api.close();
    await daemon.stop();
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });
  await daemon.start();
  await daemon.whenIdle();
  t.equal(daemon.store.get('globex')?.status, 'ACTIVE');
  t.match(await gitOut(bare, ['log', '-1', '--format=%an %s', 'main']), /^tenantd tenantd: status of 3/, 'status pushed to the remote');

  // Someone else keeps pushing to the remote while 10 API writes land.
  const other = path.join(dir, 'other');
  await cloneRepo(`http://x:git-token-123@${url.slice('http://'.length)}`, other);
  const outside = (async () => {
    for (let i = 0; i < 5; i++) {
      await commitFiles(other, { [`tenants/outside-${i}.yaml`]: tenantYaml(`outside-${i}`) }, `outside ${i}`);
      // Like a person: when the push is rejected, pull --rebase and push again (bounded).
      for (let attempt = 0; attempt < 30; attempt++) {
        const pushed = await git(other, ['push', '-q']).then(() => true, () => false);
        if (pushed) break;
        await git(other, ['pull', '-q', '--rebase']);
      }
    }
  })();
  const writes = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      fetch(`${api.url}/api/v1/infrastructure/tenants/raced-${i}/provision`, {
        method: 'POST',
        body: JSON.stringify(SEED),
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer admin' },
      }).then((r) => r.status),
    ),
  );
  await outside;
  t.same(writes, Array(10).fill(202), 'every API write answered 202');
  const files = (await gitOut(bare, ['ls-tree', '--name-only', 'main', 'tenants/'])).split('\n');
  for (let i = 0; i < 10; i++) t.ok(files.includes(`tenants/raced-${i}.yaml`), `raced-${i} is on the remote`);
  const outsideLanded = files.filter((f) => f.startsWith('tenants/outside-')).length;
  t.equal(outsideLanded, 5, 'every outside push landed too');
  // No force push: every commit the outsider pushed is still an ancestor of main.
  for (const line of (await gitOut(other, ['log', '--format=%H', '--grep=outside', '@{u}'])).split('\n').filter(Boolean)) {
    await t.resolves(git(bare, ['merge-base', '--is-ancestor', line, 'main']), `outside commit ${line.slice(0, 8)} kept`);
  }
  await daemon.poll();
  await daemon.whenIdle();
  for (let i = 0; i < 10; i++) t.equal(daemon.store.get(`raced-${i}`)?.status, 'ACTIVE');
  t.notMatch(JSON.stringify(await fsp.readdir(path.join(dir, 'data'))), /git-token-123/);
  t.notMatch(await fsp.readFile(path.join(dir, 'data', 'repo.git', 'config'), 'utf8'), /git-token-123/, 'the token is not stored in the clone');
});

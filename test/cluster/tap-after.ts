/**
 * tap's `after` hook (.taprc): stops the control plane that tests started for themselves
 * (test/helpers/kube-cluster.ts), so a test run leaves no process behind. A cluster given by
 * TENANTD_TEST_CLUSTER or TENANTD_TEST_KUBECONFIG belongs to whoever started it and is left alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClusterDir, STARTED_BY_TESTS } from '../helpers/kube-cluster.js';

if (!process.env.TENANTD_TEST_CLUSTER && !process.env.TENANTD_TEST_KUBECONFIG) {
  const dir = defaultClusterDir();
  if (existsSync(path.join(dir, STARTED_BY_TESTS))) {
    execFileSync('bash', [path.join(path.dirname(fileURLToPath(import.meta.url)), 'down.sh'), dir], { stdio: 'ignore' });
    rmSync(path.join(dir, STARTED_BY_TESTS), { force: true });
  }
}

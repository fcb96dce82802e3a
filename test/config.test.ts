import t from 'tap';
import { parseDaemonConfig, parsePoll } from '../daemon/config.js';
import { subjectFromUserName } from '../providers/kubernetes/tenant-role.js';

t.test('defaults: embedded repository, main, ./.tenantd, render, 30 s polls, port 8089, concurrency 4', async (t) => {
  const c = parseDaemonConfig([], {}, '/srv');
  t.equal(c.repo, null);
  t.equal(c.branch, 'main');
  t.equal(c.dataDir, '/srv/.tenantd');
  t.equal(c.provider, 'render');
  t.same(c.poll, { kind: 'interval', seconds: 30 });
  t.equal(c.port, 8089);
  t.equal(c.concurrency, 4);
  t.equal(c.statusBranch, null);
});

t.test('flags win over environment variables, which win over defaults', async (t) => {
  const env = { TENANTD_REPO: 'https://git.example/tenants.git', TENANTD_BRANCH: 'prod', TENANTD_CONCURRENCY: '8', PORT: '9000', TENANTD_POLL: '*/15 * * * * *' };
  const c = parseDaemonConfig(['--branch', 'staging', '--data-dir', 'state', '--status-branch', 'tenantd-status'], env, '/srv');
  t.equal(c.repo, 'https://git.example/tenants.git');
  t.equal(c.branch, 'staging');
  t.equal(c.concurrency, 8);
  t.equal(c.port, 9000);
  t.equal(c.dataDir, '/srv/state');
  t.equal(c.statusBranch, 'tenantd-status');
  t.same(c.poll, { kind: 'cron', expression: '*/15 * * * * *' });
  t.equal(parseDaemonConfig(['--repo', 'repo'], {}, '/srv').repo, '/srv/repo', 'local paths are absolute');
});

t.test('bad values are E_CONFIG errors naming the flag', async (t) => {
  const cases: Array<[string[], Record<string, string>, string]> = [
    [['--provider', 'terraform'], {}, 'provider'],
    [[], { TENANTD_CONCURRENCY: '0' }, 'concurrency'],
    [['--concurrency', 'lots'], {}, 'concurrency'],
    [['--port', '70000'], {}, 'port'],
    [['--poll', 'every minute'], {}, 'poll'],
    [['--branch', 'a..b'], {}, 'branch'],
    [['--repo', 'ssh://git@host/x.git'], {}, 'repo'],
    [['--retry-base', '10', '--retry-cap', '5'], {}, 'retry-cap'],
    [['--log-format', 'xml'], {}, 'log-format'],
    [['--tenant-role', 'tenantd-tenant'], {}, 'tenant-role'],
    [[], { TENANTD_TENANT_ROLE_SUBJECT: 'system:serviceaccount:tenantd:tenantd' }, 'tenant-role-subject'],
    [['--tenant-role', 'Tenant_Role', '--tenant-role-subject', 'me'], {}, 'tenant-role'],
    [['--tenant-role', 'tenantd-tenant', '--tenant-role-subject', ' '], {}, 'tenant-role-subject'],
  ];
  for (const [argv, env, field] of cases) {
    t.throws(() => parseDaemonConfig(argv, env, '/'), { code: 'E_CONFIG', data: { field } }, `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
  t.throws(() => parseDaemonConfig(['--nope'], {}, '/'), { code: 'E_USAGE', message: /--nope/ }, 'unknown flags are refused, named');
});

t.test('poll accepts seconds, "Ns", 0 (off) and cron expressions', async (t) => {
  t.same(parsePoll('10'), { kind: 'interval', seconds: 10 });
  t.same(parsePoll('10s'), { kind: 'interval', seconds: 10 });
  t.same(parsePoll('0'), { kind: 'off' });
  t.same(parsePoll('*/5 * * * *'), { kind: 'cron', expression: '*/5 * * * *' });
});

t.test('--tenant-role and --tenant-role-subject (the chart sets both): who tenantd binds its tenant role to', async (t) => {
  t.equal(parseDaemonConfig([], {}, '/').kube.tenantRole, null, 'off by default');
  const env = { TENANTD_TENANT_ROLE: 'tenantd-tenant', TENANTD_TENANT_ROLE_SUBJECT: 'system:serviceaccount:tenantd:tenantd' };
  t.same(parseDaemonConfig([], env, '/').kube.tenantRole, { clusterRole: 'tenantd-tenant', subject: 'system:serviceaccount:tenantd:tenantd' });
  t.same(subjectFromUserName('system:serviceaccount:tenantd:tenantd'), { kind: 'ServiceAccount', namespace: 'tenantd', name: 'tenantd' });
  t.same(subjectFromUserName('alice@example.com'), { kind: 'User', name: 'alice@example.com' }, 'any other name is a User');
  t.same(subjectFromUserName('system:serviceaccount:Bad_NS:x'), { kind: 'User', name: 'system:serviceaccount:Bad_NS:x' }, 'not a valid ServiceAccount name: taken as it is');
});

t.test('--leader-elect: off by default; Lease, identity and client-go durations from flags or env; bad values are E_CONFIG', async (t) => {
  t.equal(parseDaemonConfig([], {}, '/').leaderElection, null, 'a single daemon unless asked');
  const d = parseDaemonConfig(['--leader-elect', '--port', '9000', '--host', '10.0.0.7'], {}, '/').leaderElection;
  t.same(d?.timing, { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }, "client-go's defaults");
  t.equal(d?.name, 'tenantd');
  t.equal(d?.namespace, null, "the pod's namespace, resolved at start");
  t.match(d?.identity, /^.+_[0-9a-f-]{36}$/, 'hostname_uuid, unique per process');
  t.equal(d?.advertiseUrl, 'http://10.0.0.7:9000');
  const c = parseDaemonConfig(
    ['--leader-elect-lease-name', 'tenantd-prod', '--leader-elect-lease-duration', '6', '--leader-elect-renew-deadline', '4s', '--leader-elect-retry-period', '0.5', '--advertise-url', 'http://tenantd-0.tenantd:8089/'],
    { TENANTD_LEADER_ELECT: 'true', TENANTD_LEADER_ELECT_LEASE_NAMESPACE: 'ops', TENANTD_LEADER_ELECT_IDENTITY: 'tenantd-0' },
    '/',
  ).leaderElection;
  t.same(c, { name: 'tenantd-prod', namespace: 'ops', identity: 'tenantd-0', advertiseUrl: 'http://tenantd-0.tenantd:8089', timing: { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 500 } });
  const cases: Array<[string[], Record<string, string>, string]> = [
    [[], { TENANTD_LEADER_ELECT: 'yes' }, 'leader-elect'],
    [['--leader-elect', '--leader-elect-lease-duration', '0'], {}, 'leader-elect-lease-duration'],
    [['--leader-elect', '--leader-elect-lease-duration', 'soon'], {}, 'leader-elect-lease-duration'],
    [['--leader-elect', '--leader-elect-lease-duration', '10', '--leader-elect-renew-deadline', '10'], {}, 'leader-elect-lease-duration'],
    [['--leader-elect', '--leader-elect-renew-deadline', '2', '--leader-elect-retry-period', '2'], {}, 'leader-elect-renew-deadline'],
    [['--leader-elect', '--leader-elect-retry-period=-1'], {}, 'leader-elect-retry-period'],
    [['--leader-elect', '--leader-elect-lease-name', 'Tenantd_Lease'], {}, 'leader-elect-lease-name'],
    [['--leader-elect', '--leader-elect-lease-namespace', 'a.b'], {}, 'leader-elect-lease-namespace'],
    [['--leader-elect', '--leader-elect-identity', 'two words'], {}, 'leader-elect-identity'],
    [['--leader-elect', '--advertise-url', 'tenantd-0:8089'], {}, 'advertise-url'],
  ];
  for (const [argv, env, field] of cases) {
    t.throws(() => parseDaemonConfig(argv, env, '/'), { code: 'E_CONFIG', data: { field } }, `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
});

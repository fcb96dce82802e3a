/**
 * A retired database size through the API: accepted (existing tenants keep working), with the
 * warning in the 202 answer, the entity, the list and the committed status file.
 */
import t from 'tap';
import { apiHarness } from './helpers/api.js';
import { statusAt } from './helpers/daemon.js';
import { waitFor } from './helpers/process.js';
import { SEED } from './helpers/seed.js';

const T = '/api/v1/infrastructure/tenants';

t.test('a retired database size is accepted, and the API and the status file carry a warning naming the replacement', async (t) => {
  const h = await apiHarness(t);
  const retired = { ...SEED, configuration: { ...SEED.configuration, databaseSize: 'GP_Gen5_2' } };
  const res = await h.call('POST', `${T}/legacy/provision`, { body: retired });
  t.equal(res.status, 202, 'not refused: a production tool keeps existing tenants working');
  const warning = { file: 'tenants/legacy.yaml', path: 'spec.configuration.databaseSize', line: Number, message: /"GP_Gen5_2" is retired .*use "Standard_D2ds_v5"/ };
  t.match((res.body['tenant'] as { warnings: unknown[] }).warnings, [warning], 'in the 202 answer');
  await h.daemon.whenIdle();
  const get = await h.call('GET', `${T}/legacy`);
  t.match(get.body, { status: 'ACTIVE', warnings: [warning] });
  t.match(((await h.call('GET', `${T}?q=legacy`)).body['items'] as Array<{ warnings: unknown[] }>)[0]?.warnings, [warning], 'and in the list');
  await waitFor(async () => (await statusAt(h.repo, 'main', 'legacy').catch(() => null))?.status['status'] === 'ACTIVE', 10_000, 'the status commit');
  t.match((await statusAt(h.repo, 'main', 'legacy')).status['warnings'], [warning], 'status/legacy.yaml lists it');
  t.notOk('warnings' in (await statusAt(h.repo, 'main', 'globex')).status, 'a tenant without warnings has no warnings field');
});

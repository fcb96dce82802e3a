/**
 * A real daemon process whose records and transition log go through PowerCutFs: killing it with
 * SIGKILL is a power cut of the machine, and starting it again on the same image is the restart.
 *
 *   node --import <tap's ts loader> test/helpers/power-cut-daemon.ts <imageDir> <tenantd daemon flags…>
 *
 * SIGTERM stops it gracefully, as the CLI does.
 */
import { parseDaemonConfig } from '../../daemon/config.js';
import { TenantdDaemon } from '../../daemon/daemon.js';
import { PowerCutFs } from './power-cut-fs.js';

const [imageDir, ...argv] = process.argv.slice(2);
if (!imageDir) throw new Error('usage: power-cut-daemon.ts <imageDir> <daemon flags…>');
const config = parseDaemonConfig(argv, process.env, process.cwd());
const daemon = await TenantdDaemon.open(config, { fs: PowerCutFs.load(config.dataDir, imageDir) });
await daemon.start();
process.once('SIGTERM', () => {
  void daemon.stop().then(() => {
    process.stdout.write('power-cut-daemon: stopped\n');
    process.exit(0);
  });
});

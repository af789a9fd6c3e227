// What the Horizon end-to-end test (test/e2e/horizon.test.ts) needs from Debian's archive,
// shared by that test (its skip reason) and scripts/test.mjs (with CI=true a missing one
// fails the run). The packages are in the README's test command and in .ci/run.
import { existsSync } from 'node:fs';

/** [a file the package installs, the Debian package] */
export const HORIZON_NEEDS = [
  ['/usr/share/openstack-dashboard/manage.py', 'openstack-dashboard'],
  ['/usr/bin/chromium', 'chromium'],
  ['/usr/bin/chromedriver', 'chromium-driver'],
  ['/usr/lib/python3/dist-packages/selenium/__init__.py', 'python3-selenium'],
];

/** Why the Horizon test cannot run here, or undefined when it can. */
export function horizonMissing() {
  if (process.getuid?.() !== 0) return 'not root';
  const missing = HORIZON_NEEDS.filter(([f]) => !existsSync(f)).map(([, pkg]) => pkg);
  return missing.length ? `Debian's ${missing.join(', ')} not installed` : undefined;
}

/**
 * The removal of a `run` container's directory as overlayfs really leaves it: the
 * overlay's work/work is mode 0, which only root can enter (the unit test covers the
 * same removals unprivileged, with a mode-0700 work/work).
 */
import { describe } from 'vitest';
import { containerDirRemovalCases } from '../helpers/container-dir-cases.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('as root, work/work mode 0', () => {
  containerDirRemovalCases(0);
});

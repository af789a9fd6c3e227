import { defineConfig } from 'vitest/config';

// The QEMU guest (test/vm) emulates its CPUs (TCG): everything there is several times
// slower, and a busy CI host slows it further.
const guest = process.env.NOVABOX_IN_GUEST === '1';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    // root's subordinate ids from files of the tests' own, never the host's /etc/subuid
    setupFiles: ['test/helpers/subid-setup.ts'],
    // Integration tests make real kernel objects: run files one after another.
    fileParallelism: false,
    testTimeout: guest ? 120_000 : 30_000,
    hookTimeout: guest ? 120_000 : 30_000,
  },
});

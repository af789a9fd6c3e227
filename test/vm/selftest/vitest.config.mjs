// Used only by test/vm/selftest.sh (NOVABOX_VM_CHECK_VITEST=1): proves vitest runs in the VM.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('.', import.meta.url).pathname,
    include: ['*.test.mjs'],
    testTimeout: 60_000,
  },
});

export function shebangFor(execPath: string, env?: NodeJS.ProcessEnv): string;
export function writeLauncher(template: string, out: string, shebang: string): void;

export function standInSource(path: string, real: object, extra?: string): string;

export function isMusl(): boolean;
export function koffiNativePath(root: string, opts?: { platform?: string; arch?: string; musl?: boolean }): string | null;

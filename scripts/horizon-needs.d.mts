export const HORIZON_NEEDS: [string, string][];
export function horizonMissing(): string | undefined;

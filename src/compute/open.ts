/**
 * What a front end opens: the state database and the compute service on it. The front
 * ends (cli/context.ts, api/serve.ts, the API's stop/delete worker) reach the store only
 * through here and through the services built on it.
 */
import { openStore, type OpenOptions } from '../store/db.js';
import { ComputeService } from './servers.js';

export { CLI_WAL_PAGES, openStore, type Store } from '../store/db.js';

/** The compute service on its own connection to the state database. */
export function openCompute(opts: OpenOptions = {}): ComputeService {
  return new ComputeService(openStore(undefined, opts));
}

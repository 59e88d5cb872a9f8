/** Every benchmark, in the order `npm run bench` runs them. */
import type { Benchmark } from '../harness';
import { coldStart } from './cold-start';
import { cliCat } from './cli-cat';
import { cliPutDir } from './cli-put-dir';
import { compareMemory } from './compare-memory';
import { listMemory } from './list-memory';
import { locks } from './locks';
import { ls } from './ls';
import { put } from './put';
import { readBytes } from './read-bytes';
import { readLatency } from './read-latency';
import { replication } from './replication';
import { replicationCost } from './replication-cost';
import { sync } from './sync';
import { web } from './web';

export const benchmarks: Benchmark[] = [readBytes, readLatency, compareMemory, coldStart, ls, put, listMemory, replication, replicationCost, sync, locks, cliPutDir, cliCat, web];

// Runs a wasm32-wasip1 command (argv[2]) under node's WASI with the rest of argv, the current
// directory readable as "."; for scripts/bench/tick-cost.sh. V8 runs it, as in workerd.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [wasmPath, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: ['rollout-sim', ...args],
  env: process.env,
  preopens: { '.': '.' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);

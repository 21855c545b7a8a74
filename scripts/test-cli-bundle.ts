// Bundles evtctl for the test suite (see scripts/cli-bundle.ts) and prints the launcher's path.
// scripts/test.sh writes it to packages/evtctl/.test-bin/ and points EVTCTL_TEST_BIN at the launcher; without
// that variable the tests run bin/evtctl.js, as a developer running one test file does.
import { fileURLToPath } from 'node:url'
import { bundleEvtctl } from './cli-bundle.ts'

const DIR = fileURLToPath(new URL('../packages/evtctl/.test-bin/', import.meta.url))
process.stdout.write(`${await bundleEvtctl(DIR)}\n`)

// Preloaded with `node --import` by start-up tests: appends every module URL the process loads to the file named
// in KRUN_RECORD_MODULES, so a test can prove which libraries a command pulled in.
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const file = process.env.KRUN_RECORD_MODULES;
if (file) {
  registerHooks({
    load(url, context, nextLoad) {
      appendFileSync(file, `${url}\n`);
      return nextLoad(url, context);
    },
  });
}

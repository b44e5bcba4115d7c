// oclif treats an unknown command as a plain failure; for krun it is a usage error (exit 2) with a pointer.
import type { Hook } from '@oclif/core';
import { UsageError } from '../../errors.ts';

const hook: Hook.CommandNotFound = async ({ id, config }) => {
  const ids = config.commandIDs;
  const near = ids.filter((c) => c.startsWith(id.slice(0, 2)) || id.startsWith(c));
  throw new UsageError(`unknown command "${id.replaceAll(':', ' ')}"`, {
    hints: [...near.map((c) => `${config.bin} ${c.replaceAll(':', ' ')}`), `${config.bin} --help`],
  });
};

export default hook;

// Failures of the function's Pod rather than of the function: exit 125, docker's status for "the container could
// not be run", so kustomize and kpt report them the way they report a docker failure.
import { ExitCode, KrunError } from '../errors.ts';

export class FnRuntimeError extends KrunError {
  override readonly exitCode: number = ExitCode.fnRuntime;
}

/** The container was killed for exceeding its memory limit: docker's 137 (128 + SIGKILL), with the reason. */
export class FnOomError extends KrunError {
  override readonly exitCode: number = 137;
}

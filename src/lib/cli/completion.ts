// Shell completion scripts for bash and zsh, generated from the command list (oclif's manifest): commands and
// topics, each command's flags, and the values of flags with fixed options. The scripts hold everything they
// complete, so pressing TAB never starts krun. After `--` (krun run -- CMD) the shell completes as usual.

export interface CompletionFlag {
  readonly name: string;
  readonly char?: string | undefined;
  readonly summary?: string | undefined;
  readonly options?: readonly string[] | undefined;
  readonly hidden?: boolean | undefined;
}

export interface CompletionCommand {
  /** oclif's id, topics separated by ':' (runtime:install). */
  readonly id: string;
  readonly summary?: string | undefined;
  readonly hidden?: boolean | undefined;
  readonly flags: readonly CompletionFlag[];
}

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

interface Word {
  readonly word: string;
  readonly summary: string;
}

interface Model {
  /** Words after a command path ('' for the top level): subcommands and topics. */
  readonly children: Map<string, Word[]>;
  /** Flags of each command, as typed (--name and -c). */
  readonly flags: Map<string, Word[]>;
  /** Values of flags with fixed options, by command and flag spelling. */
  readonly values: Map<string, Map<string, readonly string[]>>;
}

function model(commands: readonly CompletionCommand[], topics: ReadonlyMap<string, string>): Model {
  const children = new Map<string, Word[]>();
  const flags = new Map<string, Word[]>();
  const values = new Map<string, Map<string, readonly string[]>>();
  const addChild = (parent: string, word: string, summary: string) => {
    const list = children.get(parent) ?? [];
    if (!list.some((w) => w.word === word)) list.push({ word, summary });
    children.set(parent, list);
  };
  for (const command of commands) {
    if (command.hidden) continue;
    const parts = command.id.split(':');
    parts.forEach((word, i) => {
      const parent = parts.slice(0, i).join(':');
      const path = parts.slice(0, i + 1).join(':');
      addChild(parent, word, path === command.id ? (command.summary ?? '') : (topics.get(path) ?? ''));
    });
    const visible = command.flags.filter((f) => !f.hidden);
    flags.set(
      command.id,
      visible.flatMap((f) => [
        { word: `--${f.name}`, summary: f.summary ?? '' },
        ...(f.char ? [{ word: `-${f.char}`, summary: f.summary ?? '' }] : []),
      ]),
    );
    const byFlag = new Map<string, readonly string[]>();
    for (const f of visible) {
      if (!f.options?.length) continue;
      byFlag.set(`--${f.name}`, f.options);
      if (f.char) byFlag.set(`-${f.char}`, f.options);
    }
    values.set(command.id, byFlag);
  }
  for (const [id, list] of flags) flags.set(id, [...list, { word: '--help', summary: 'Show help' }]);
  flags.set('', [
    { word: '--help', summary: 'Show help' },
    { word: '--version', summary: 'Print the version' },
  ]);
  for (const list of children.values()) list.sort((a, b) => a.word.localeCompare(b.word));
  return { children, flags, values };
}

/** The completion function's name: _krun. */
const functionName = (bin: string) => `_${bin.replace(/\W/g, '_')}`;

/** A single-quoted shell word. */
const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The shell functions FN_children, FN_flags and FN_values: `case` lookups of the model by command path (and flag,
 * for values), each arm running what `words` or `values` renders; `otherwise` runs for an unknown key.
 */
function lookups(
  m: Model,
  fn: string,
  words: (list: readonly Word[]) => string,
  values: (options: readonly string[]) => string,
  otherwise: string,
): string {
  const lookup = (name: string, arms: [string, string][], fallback: string) =>
    `${fn}_${name}() {\n  case "$1" in\n${arms.map(([key, body]) => `    ${sq(key)}) ${body} ;;\n`).join('')}` +
    `    *) ${fallback} ;;\n  esac\n}\n`;
  const valueArms = [...m.values].flatMap(([id, byFlag]) =>
    [...byFlag].map(([flag, options]): [string, string] => [`${id} ${flag}`, values(options)]),
  );
  return (
    lookup(
      'children',
      [...m.children].map(([k, v]) => [k, words(v)]),
      otherwise,
    ) +
    lookup(
      'flags',
      [...m.flags].map(([k, v]) => [k, words(v)]),
      otherwise,
    ) +
    lookup('values', valueArms, 'return 1')
  );
}

function bash(m: Model, bin: string): string {
  const fn = functionName(bin);
  const echo = (words: readonly string[]) => `echo ${sq(words.join(' '))}`;
  return `# ${bin} completion for bash. Load it with: source <(${bin} autocomplete bash)
${lookups(m, fn, (list) => echo(list.map((w) => w.word)), echo, ':')}${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    # After --, the words are another command line: complete it as the shell would.
    if [[ $word == -- ]]; then compopt -o default -o bashdefault 2>/dev/null; COMPREPLY=(); return; fi
    [[ $word == -* ]] && continue
    if [[ " $(${fn}_children "$cmd") " == *" $word "* ]]; then cmd="\${cmd:+$cmd:}$word"; fi
  done
  local values
  if [[ $prev == -* ]] && values="$(${fn}_values "$cmd $prev")"; then
    mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(${fn}_flags "$cmd")" -- "$cur")
  else
    local children; children="$(${fn}_children "$cmd")"
    if [[ -n $children ]]; then mapfile -t COMPREPLY < <(compgen -W "$children" -- "$cur")
    else compopt -o default 2>/dev/null; COMPREPLY=(); fi
  fi
}
complete -F ${fn} ${bin}
`;
}

function zsh(m: Model, bin: string): string {
  const fn = functionName(bin);
  // _describe splits "word:summary" at the first unescaped colon.
  const described = (list: readonly Word[]) =>
    `items=(${list.map((w) => sq(`${w.word.replaceAll(':', '\\:')}:${w.summary}`)).join(' ')})`;
  return `#compdef ${bin}
# ${bin} completion for zsh. Load it with: source <(${bin} autocomplete zsh)
# (or save it as _${bin} in a directory of your $fpath).
${lookups(m, fn, described, (options) => `items=(${options.map(sq).join(' ')})`, 'items=()')}${fn}() {
  local cmd="" word i
  local -a items
  for ((i = 2; i < CURRENT; i++)); do
    word=\${words[i]}
    # After --, the words are another command line: complete it as the shell would.
    if [[ $word == -- ]]; then shift $i words; (( CURRENT -= i )); _normal; return; fi
    [[ $word == -* ]] && continue
    ${fn}_children "$cmd"
    if (( \${items[(I)\${word}:*]} )); then cmd=\${cmd:+$cmd:}$word; fi
  done
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]}
  if [[ $prev == -* ]] && ${fn}_values "$cmd $prev"; then compadd -a items; return; fi
  if [[ $cur == -* ]]; then ${fn}_flags "$cmd"; _describe -t flags flag items; return; fi
  ${fn}_children "$cmd"
  if (( \${#items} )); then _describe -t commands command items; else _files; fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then ${fn} "$@"; else compdef ${fn} ${bin}; fi
`;
}

/** The completion script for `shell`; `topics` gives topic summaries (runtime → its summary). */
export function completionScript(
  shell: Shell,
  bin: string,
  commands: readonly CompletionCommand[],
  topics: ReadonlyMap<string, string> = new Map(),
): string {
  const m = model(commands, topics);
  return shell === 'bash' ? bash(m, bin) : zsh(m, bin);
}

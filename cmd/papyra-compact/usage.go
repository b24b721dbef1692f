package main

const usageShort = `usage: papyra-compact COMMAND [OPTIONS]
commands: run, check, version, help (see papyra-compact --help)
`

// manual is the --help text; the packaged man page papyra-compact(1) is
// generated from it.
const manual = `NAME
    papyra-compact - apply retention physically to Papyra persistence stores

SYNOPSIS
    papyra-compact run [--config FILE] [--target NAME]... [--dry-run] [--now UNIX]
                       [--log-level LEVEL] [--no-progress]
    papyra-compact check [--config FILE]
    papyra-compact version
    papyra-compact help

DESCRIPTION
    Papyra's persistence stores grow forever unless something removes what
    their retention policy no longer keeps. papyra-compact does that, for
    every target listed in its YAML configuration, while Papyra processes
    keep writing:

    jsonl     a JsonFilePersistence file. Records are kept exactly as
              Papyra's apply_retention keeps them (age, then count, then
              Python repr size), copied byte for byte into a new file that
              atomically replaces the old one. Records appended during the
              run are carried over. Lines Papyra cannot read are moved to
              the quarantine directory, never dropped.
    memory    InMemoryPersistence; nothing to do.

    Runs on one store are serialized with a lock file in the lock
    directory; a target whose store is locked by another run is skipped.

COMMANDS
    run       Compact every target once (or only those named with
              --target), then print one summary line per target.
    check     Validate the configuration and list the targets. Every
              problem is reported, each with file, line and field.
    version   Print the version.
    help      Print this text.

OPTIONS
    --config FILE     Configuration file (default /etc/papyra/compact.yaml).
    --target NAME     Only this target; repeat for several.
    --dry-run         Print, per target, what would go: records and bytes
                      before and after, quarantined lines, the oldest kept
                      timestamp. Changes nothing on disk.
    --now UNIX        Evaluate age retention as of this Unix time instead
                      of the clock (what-if runs, tests).
    --log-level LVL   debug, info (default), warn or error.
    --no-progress     Never draw the progress bar. It is drawn only on a
                      terminal, and only for work that lasts over a second.

EXIT STATUS
    0    every target succeeded or had nothing to do
    1    at least one target failed (the others still ran)
    2    usage error or invalid configuration
    75   no target failed, but at least one was skipped because another
         run held its lock (EX_TEMPFAIL; the unit treats it as success)

FILES
    /etc/papyra/compact.yaml            configuration
    /var/lib/papyra-compact/            state directory
    /var/lib/papyra-compact/quarantine/ corrupt lines, one folder per target
    /run/papyra-compact/                lock files

EXAMPLES
    papyra-compact check
    papyra-compact run --dry-run --target orders
    papyra-compact run

SEE ALSO
    systemctl(1), journalctl(1), flock(2)
`

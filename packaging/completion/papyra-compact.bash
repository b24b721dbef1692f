# bash completion for papyra-compact(1)
# Installed to /usr/share/bash-completion/completions/papyra-compact.

# _papyra_compact_targets CONFIG: the target names in a configuration
# file ("- name: x" entries; commented-out examples are skipped).
_papyra_compact_targets()
{
    [[ -r $1 ]] || return
    awk '/^[[:space:]]*-[[:space:]]+name:[[:space:]]*[^[:space:]#]/ {
        v = $3; gsub(/["'\'']/, "", v); print v }' "$1" 2>/dev/null
}

_papyra_compact()
{
    local cur prev words cword
    _init_completion -s || return

    local commands="run daemon check status explain version help"
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    local cmd=${words[1]} config=/etc/papyra/compact.yaml i
    for ((i = 2; i < cword; i++)); do
        if [[ ${words[i]} == --config ]]; then
            config=${words[i + 1]}
        elif [[ ${words[i]} == --config=* ]]; then
            config=${words[i]#--config=}
        fi
    done

    case $prev in
        --config)
            _filedir '@(yaml|yml)'
            return
            ;;
        --state-dir)
            _filedir -d
            return
            ;;
        --target)
            COMPREPLY=($(compgen -W "$(_papyra_compact_targets "$config")" -- "$cur"))
            return
            ;;
        --log-level)
            COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
            return
            ;;
        --now | --stop-grace | --concurrency)
            return
            ;;
    esac

    local opts
    case $cmd in
        run) opts="--config --target --dry-run --now --log-level --no-progress" ;;
        daemon) opts="--config --log-level --stop-grace --concurrency" ;;
        check) opts="--config --units" ;;
        status) opts="--config --state-dir --json" ;;
        explain) opts="--config --json --now" ;;
        *) return ;;
    esac
    if [[ $cmd == explain && $cur != -* ]]; then
        # TARGET: the first word after explain that is not an option.
        local n=0
        for ((i = 2; i < cword; i++)); do
            [[ ${words[i]} == -* || ${words[i - 1]} == --config || ${words[i - 1]} == --now ]] || ((n++))
        done
        if ((n == 0)); then
            COMPREPLY=($(compgen -W "$(_papyra_compact_targets "$config")" -- "$cur"))
            return
        fi
    fi
    if [[ $cur == -* || -z $cur ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
} &&
    complete -F _papyra_compact papyra-compact

# ex: filetype=sh

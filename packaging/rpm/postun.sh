#!/bin/sh
# %postun for papyra-compact. $1 is the number of versions left: 0 on
# erase, 1 or more after an upgrade (this is the old version's script).
#
# RPM has no purge: an erase keeps the state directory
# (/var/lib/papyra-compact, quarantine included) and the papyra-compact
# user, as the Fedora guidelines ask for system users; a modified
# /etc/papyra/compact.yaml is kept as compact.yaml.rpmsave. To purge,
# delete the directory and the user by hand. The metrics textfile goes:
# node_exporter would export its series, stale, forever.

if [ "$1" -eq 0 ]; then
    rm -f /var/lib/prometheus/node-exporter/papyra_compact.prom
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -ge 1 ]; then
        # Upgrade: restart what was running on the new binary. The daemon
        # and the timer conflict, so only the one that is active.
        if systemctl --quiet is-active papyra-compact-daemon.service; then
            systemctl try-restart papyra-compact-daemon.service || :
        else
            systemctl try-restart papyra-compact.timer || :
        fi
    fi
fi

#!/bin/sh
# %post for papyra-compact. $1 is the number of versions installed after
# this transaction: 1 on the first install, 2 or more on an upgrade.

# The service user and group, then its directories.
systemd-sysusers papyra-compact.conf || :
systemd-tmpfiles --create papyra-compact.conf || :

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi

# Enable (and start) the timer on the first install only: an upgrade
# leaves the admin's choice alone, including a disabled timer. The shipped
# configuration has no target, so a pass does nothing until one is added.
if [ "$1" -eq 1 ]; then
    systemctl --no-reload enable papyra-compact.timer >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl start papyra-compact.timer || :
    fi
fi

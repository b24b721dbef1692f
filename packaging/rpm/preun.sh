#!/bin/sh
# %preun for papyra-compact. $1 is the number of versions left after this
# transaction: 0 on erase, 1 or more when an upgrade removes the old one.
# Units are stopped and disabled only on erase; an upgrade keeps them
# running and %postun restarts them on the new binary.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable papyra-compact.timer papyra-compact-daemon.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop papyra-compact.timer papyra-compact.service \
            papyra-compact-daemon.service || :
    fi
fi

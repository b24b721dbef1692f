package main

import (
	"context"
	"fmt"
	"os"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// The units whose state `status` reads.
const (
	timerUnit  = "papyra-compact.timer"
	daemonUnit = "papyra-compact-daemon.service"
)

// unitState is one unit as systemd sees it now.
type unitState struct {
	Unit string `json:"unit"`
	// LoadState is "loaded", or "not-found" when the unit is not installed.
	LoadState string `json:"load_state"`
	// UnitFileState is "enabled", "disabled", "masked", …: whether it
	// starts at boot.
	UnitFileState string `json:"unit_file_state"`
	// ActiveState is "active", "inactive", "failed", …: whether it runs now.
	ActiveState string `json:"active_state"`
}

// enabled reports whether the unit starts at boot.
func (u unitState) enabled() bool {
	return u.UnitFileState == "enabled" || u.UnitFileState == "enabled-runtime"
}

func (u unitState) active() bool { return u.ActiveState == "active" || u.ActiveState == "reloading" }

func (u unitState) String() string {
	return fmt.Sprintf("%s: %s, %s", u.Unit, orDash(u.UnitFileState), orDash(u.ActiveState))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// unitsView is what `status` learns from systemd: which of the two ways
// of running compactions is set up, and when the timer fires next.
type unitsView struct {
	Timer  unitState `json:"timer"`
	Daemon unitState `json:"daemon"`
	// TimerNext is the timer's next elapse (NextElapseUSecRealtime);
	// nil when the timer is not active.
	TimerNext *time.Time `json:"timer_next_elapse"`
}

// installed reports whether the package's units are there at all; a
// binary run from a source tree has none, and nothing to warn about.
func (v *unitsView) installed() bool {
	return v != nil && v.Timer.LoadState == "loaded" && v.Daemon.LoadState == "loaded"
}

// scheduleProblem says why nothing will compact, or "" when the timer
// or the daemon is both enabled (it comes back after a reboot) and
// active (it runs now).
func (v *unitsView) scheduleProblem() string {
	if !v.installed() {
		return ""
	}
	if (v.Timer.enabled() && v.Timer.active()) || (v.Daemon.enabled() && v.Daemon.active()) {
		return ""
	}
	return fmt.Sprintf("nothing compacts on schedule: neither %s nor %s is enabled and active (%s; %s). "+
		"Enable one: `systemctl enable --now %s`, or `systemctl enable --now %s`",
		timerUnit, daemonUnit, v.Timer, v.Daemon, timerUnit, daemonUnit)
}

// readUnits asks systemd over D-Bus for the units' state. It returns nil
// and no error when systemd is not the init system (a container, a
// build machine): there is nothing to ask.
func readUnits(ctx context.Context) (*unitsView, error) {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// As root the manager's private socket, else the system bus: reading
	// unit properties needs no privilege.
	conn, err := sddbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	v := &unitsView{}
	for _, u := range []struct {
		name string
		into *unitState
	}{{timerUnit, &v.Timer}, {daemonUnit, &v.Daemon}} {
		props, err := conn.GetUnitPropertiesContext(ctx, u.name)
		if err != nil {
			return nil, fmt.Errorf("read %s over D-Bus: %w", u.name, err)
		}
		str := func(k string) string { s, _ := props[k].(string); return s }
		*u.into = unitState{Unit: u.name, LoadState: str("LoadState"), UnitFileState: str("UnitFileState"), ActiveState: str("ActiveState")}
	}
	if v.Timer.active() {
		p, err := conn.GetUnitTypePropertyContext(ctx, timerUnit, "Timer", "NextElapseUSecRealtime")
		if err != nil {
			return nil, fmt.Errorf("read %s's next elapse over D-Bus: %w", timerUnit, err)
		}
		if usec, ok := p.Value.Value().(uint64); ok && usec > 0 && usec != ^uint64(0) {
			t := time.UnixMicro(int64(usec)).UTC()
			v.TimerNext = &t
		}
	}
	return v, nil
}

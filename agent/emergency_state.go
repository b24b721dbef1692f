package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/papyra-compact/papyra-compact/config"
)

// EmergencyState is what emergency drops (keep_free) did to one target's
// store: counters that only grow, and the verdict of the last check of
// its file system.
type EmergencyState struct {
	// Dropped* count what emergency drops removed: records, other lines
	// (corrupt ones are quarantined first), segments and bytes.
	DroppedRecords  uint64 `json:"dropped_records"`
	DroppedOther    uint64 `json:"dropped_other_lines"`
	DroppedSegments uint64 `json:"dropped_segments"`
	DroppedBytes    uint64 `json:"dropped_bytes"`
	// LastDrop is when the last emergency drop of this store happened.
	LastDrop time.Time `json:"last_drop,omitzero"`
	// LastCheck is when free space on the store's file system was last
	// checked; FreeBytes and KeepFreeBytes are what that check found
	// and needed (the largest keep_free of the stores on it).
	LastCheck     time.Time `json:"last_check,omitzero"`
	FreeBytes     int64     `json:"free_bytes"`
	KeepFreeBytes int64     `json:"keep_free_bytes"`
	// Unmet is true when the last check left less than keep_free free;
	// UnmetReason says what was left that may not go.
	Unmet       bool   `json:"unmet"`
	UnmetReason string `json:"unmet_reason,omitempty"`
}

// applyEmergency folds one file system's check into target's state.
func (s *TargetState) applyEmergency(at time.Time, f EmergencyFS, target string) {
	if s.Since.IsZero() {
		s.Since = at
	}
	s.Version = stateVersion
	s.Target = target
	e := s.Emergency
	if e == nil {
		e = &EmergencyState{}
		s.Emergency = e
	}
	e.LastCheck, e.FreeBytes, e.KeepFreeBytes = at, f.FreeAfter, f.KeepFree
	e.Unmet, e.UnmetReason = f.Unmet != "", f.Unmet
	for _, d := range f.Drops {
		if d.Target != target {
			continue
		}
		if s.Backend == "" {
			s.Backend = d.Kind
		}
		e.DroppedRecords += nonNeg(d.Records)
		e.DroppedOther += nonNeg(d.Other)
		e.DroppedSegments++
		e.DroppedBytes += nonNeg(d.Bytes)
		e.LastDrop = d.At
	}
}

// RecordEmergency folds an emergency check into the state of every
// target it looked at, then rewrites the textfile.
func (r *Recorder) RecordEmergency(rep EmergencyReport) error {
	if len(rep.FileSystems) == 0 {
		return nil
	}
	return r.update(func(cfg *config.Config) error {
		for _, f := range rep.FileSystems {
			for _, name := range f.Targets {
				st, _, err := LoadTargetState(cfg.StateDir, name)
				if err != nil {
					return err
				}
				st.applyEmergency(rep.At, f, name)
				if err := SaveTargetState(cfg.StateDir, st); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// emergencyCollector exports the emergency state of every target that
// set keep_free, from the main collector's snapshot.
type emergencyCollector struct {
	c                               *collector
	records, other, segments, bytes *prometheus.Desc
	lastDrop, lastCheck, free, keep *prometheus.Desc
	unmet                           *prometheus.Desc
}

func newEmergencyCollector(c *collector) *emergencyCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "emergency", name), help, []string{"target", "backend"}, nil)
	}
	return &emergencyCollector{
		c: c,
		records: d("dropped_records_total",
			"Records removed by emergency drops (keep_free): whole rotated segments dropped because the file system's free space fell below keep_free, whatever retention keeps."),
		other: d("dropped_other_lines_total",
			"Lines that were not records (corrupt ones are quarantined first, a torn line, lines too deep to judge) in segments emergency drops removed."),
		segments: d("dropped_segments_total",
			"Rotated segments removed whole by emergency drops (keep_free)."),
		bytes: d("dropped_bytes_total",
			"Bytes of the segments emergency drops removed (keep_free)."),
		lastDrop: d("last_drop_timestamp_seconds",
			"Unix time of the last emergency drop of the target's store; absent before the first."),
		lastCheck: d("last_check_timestamp_seconds",
			"Unix time free space on the target's file system was last checked against keep_free; absent before the first check."),
		free: d("free_bytes",
			"Bytes an unprivileged writer could use on the target's file system after the last emergency check."),
		keep: d("keep_free_bytes",
			"The keep_free the last emergency check applied to the target's file system, in bytes (the largest of the stores on it)."),
		unmet: d("keep_free_unmet",
			"1 when the last emergency check could not bring free space up to keep_free (everything left is younger than min_keep, active, or could not be dropped), 0 when it was met."),
	}
}

// Describe implements prometheus.Collector.
func (e *emergencyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{e.records, e.other, e.segments, e.bytes, e.lastDrop, e.lastCheck, e.free, e.keep, e.unmet} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: every target that set
// keep_free exports its counters (0 before the first drop) and, once
// checked, the gauges of the last check.
func (e *emergencyCollector) Collect(ch chan<- prometheus.Metric) {
	e.c.mu.Lock()
	snap := e.c.snap
	e.c.mu.Unlock()
	for _, t := range snap.targets {
		if t.cfg.KeepFree == nil {
			continue
		}
		lv := []string{t.cfg.Name, t.cfg.Kind}
		st := t.state.Emergency
		if st == nil {
			st = &EmergencyState{}
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
		}
		counter(e.records, st.DroppedRecords)
		counter(e.other, st.DroppedOther)
		counter(e.segments, st.DroppedSegments)
		counter(e.bytes, st.DroppedBytes)
		if !st.LastDrop.IsZero() {
			gauge(e.lastDrop, unixSeconds(st.LastDrop))
		}
		if !st.LastCheck.IsZero() {
			gauge(e.lastCheck, unixSeconds(st.LastCheck))
			gauge(e.free, float64(st.FreeBytes))
			gauge(e.keep, float64(st.KeepFreeBytes))
			gauge(e.unmet, boolValue(st.Unmet))
		}
	}
}

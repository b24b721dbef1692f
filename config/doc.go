// Package config defines papyra-compact's configuration: its schema, the
// built-in defaults, and the strict loader shared by the agent and
// `papyra-compact check`. Load starts from Default() and decodes the YAML
// file (https://yaml.org/spec/1.2.2/, as go.yaml.in/yaml/v3 reads it)
// through its node tree, so that every value keeps its line; it rejects
// unknown fields, wrong types, duplicate keys and merge keys, validates the
// result, and reports every problem at once as *FieldError values joined
// with errors.Join, sorted by line, each reading like
// "compact.yaml:12: targets[0].retention.max_age: must be > 0 (got 0s)" and
// wrapping one of the Err* sentinels for errors.Is. A key given an explicit
// null (`key: ~` or `key:`) is unset: a nil pointer, an empty string, a
// zero number or duration. Retention mirrors Papyra's RetentionPolicy
// (papyra/persistence/_retention.py), whose max_age_seconds the loader
// also accepts as max_age, a Duration such as 7d.
package config

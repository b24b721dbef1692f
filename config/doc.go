// Package config defines papyra-compact's configuration schema, its built-in
// defaults, and the strict loader behind both the agent and
// `papyra-compact check`. Load starts from Default(), decodes the YAML file
// through a yaml.Node tree so that every value keeps its line, rejects unknown
// fields, wrong types and duplicate keys, then validates the result; it
// reports every problem at once as *FieldError values joined with
// errors.Join, each reading like
//
//	/etc/papyra/compact.yaml:12: targets[0].retention.max_age: must be > 0 (got 0s)
//
// and wrapping one of the Err* sentinels for errors.Is. An explicit null
// (`key: ~` or `key:`) means "unset": a nil pointer, an empty string, a zero
// number. Retention follows Papyra's RetentionPolicy
// (papyra/persistence/_retention.py); the YAML syntax is YAML 1.1 as
// implemented by go.yaml.in/yaml/v3 (https://github.com/yaml/go-yaml),
// without merge keys.
package config

package singularity

import (
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// files holds Apptainer's fixed /.singularity.d scripts, byte for byte.
//
//go:embed files/*.sh
var files embed.FS

// envName is the pattern Apptainer accepts for a variable of the image's ENV;
// others are left out of 10-docker2singularity.sh, as Apptainer does.
var envName = regexp.MustCompile(`^[a-zA-Z_]{1,}[a-zA-Z0-9_]{0,}$`)

// runscriptTemplate is Apptainer's runscript body for OCI images. Its line
// `eval "set ${SINGULARITY_OCI_RUN}"` is what the runtimes look for to run the
// script in-process, so it must stay byte-exact.
var runscriptTemplate = template.Must(template.New("runscript").Parse(`
# When SINGULARITY_NO_EVAL set, use OCI compatible behavior that does
# not evaluate resolved CMD / ENTRYPOINT / ARGS through the shell, and
# does not modify expected quoting behavior of args.
if [ -n "$SINGULARITY_NO_EVAL" ]; then
    # ENTRYPOINT only - run entrypoint plus args
    if [ -z "$OCI_CMD" ] && [ -n "$OCI_ENTRYPOINT" ]; then
        {{ .PrependEntrypoint }}
        exec "$@"
    fi

    # CMD only - run CMD or override with args
    if [ -n "$OCI_CMD" ] && [ -z "$OCI_ENTRYPOINT" ]; then
        {{- if .PrependCmd }}
        if [ $# -eq 0 ]; then
            {{ .PrependCmd }}
        fi
        {{- end }}
        exec "$@"
    fi

    # ENTRYPOINT and CMD - run ENTRYPOINT with CMD as default args
    # override with user provided args
    {{- if .PrependEntrypoint }}
    if [ $# -gt 0 ]; then
        {{ .PrependEntrypoint }}
	else
        {{ .PrependCmd }}
        {{ .PrependEntrypoint }}
    fi
	{{- else if .PrependCmd }}
    if [ $# -eq 0 ]; then
        {{ .PrependCmd }}
    fi
    {{- end }}
    exec "$@"
fi

# Standard Apptainer behavior evaluates CMD / ENTRYPOINT / ARGS
# combination through shell before exec, and requires special quoting
# due to concatenation of CMDLINE_ARGS.
CMDLINE_ARGS=""
# prepare command line arguments for evaluation
for arg in "$@"; do
        CMDLINE_ARGS="${CMDLINE_ARGS} \"$arg\""
done

# ENTRYPOINT only - run entrypoint plus args
if [ -z "$OCI_CMD" ] && [ -n "$OCI_ENTRYPOINT" ]; then
    if [ $# -gt 0 ]; then
        SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${CMDLINE_ARGS}"
    else
        SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT}"
    fi
fi

# CMD only - run CMD or override with args
if [ -n "$OCI_CMD" ] && [ -z "$OCI_ENTRYPOINT" ]; then
    if [ $# -gt 0 ]; then
        SINGULARITY_OCI_RUN="${CMDLINE_ARGS}"
    else
        SINGULARITY_OCI_RUN="${OCI_CMD}"
    fi
fi

# ENTRYPOINT and CMD - run ENTRYPOINT with CMD as default args
# override with user provided args
if [ $# -gt 0 ]; then
    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${CMDLINE_ARGS}"
else
    SINGULARITY_OCI_RUN="${OCI_ENTRYPOINT} ${OCI_CMD}"
fi

# Evaluate shell expressions first and set arguments accordingly,
# then execute final command as first container process
eval "set ${SINGULARITY_OCI_RUN}"
exec "$@"
`))

// escapeDouble escapes s for use between double quotes in sh: backslash,
// double quote, backtick and dollar.
func escapeDouble(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(s)
}

// escapeSingle escapes s for use between single quotes in sh.
func escapeSingle(s string) string {
	return strings.ReplaceAll(s, `'`, `'"'"'`)
}

// argsQuoted joins args as double-quoted, escaped words.
func argsQuoted(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = `"` + escapeDouble(a) + `"`
	}
	return strings.Join(q, " ")
}

// dockerEnvScript renders /.singularity.d/env/10-docker2singularity.sh from
// the image's ENV: PATH is set as the image says, every other variable only if
// the host left it unset or empty. Names sh cannot hold are left out and
// returned, so the caller can log them.
func dockerEnvScript(env []string) (script string, skipped []string) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, kv := range env {
		k, v, hasValue := strings.Cut(kv, "=")
		if !envName.MatchString(k) {
			skipped = append(skipped, k)
			continue
		}
		switch {
		case !hasValue:
			fmt.Fprintf(&b, "export %s=\"${%s:-}\"\n", k, k)
		case k == "PATH":
			fmt.Fprintf(&b, "export %s=\"%s\"\n", k, escapeDouble(v))
		default:
			fmt.Fprintf(&b, "export %s=\"${%s:-\"%s\"}\"\n", k, k, escapeDouble(v))
		}
	}
	return b.String(), skipped
}

// runscript renders /.singularity.d/runscript from ENTRYPOINT and CMD.
func runscript(entrypoint, cmd []string) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("OCI_ENTRYPOINT='" + escapeSingle(argsQuoted(entrypoint)) + "'\n")
	b.WriteString("OCI_CMD='" + escapeSingle(argsQuoted(cmd)) + "'\n")
	prepend := func(args []string) string {
		var p strings.Builder
		for i := len(args) - 1; i >= 0; i-- {
			fmt.Fprintf(&p, "set -- '%s' \"$@\"\n", escapeSingle(args[i]))
		}
		return p.String()
	}
	err := runscriptTemplate.Execute(&b, struct{ PrependCmd, PrependEntrypoint string }{
		PrependCmd: prepend(cmd), PrependEntrypoint: prepend(entrypoint),
	})
	if err != nil {
		return "", fmt.Errorf("rendering runscript: %w", err)
	}
	return b.String(), nil
}

// definition is the definition file Apptainer records for an image pulled
// from a registry.
func definition(from string) string {
	return "bootstrap: docker\nfrom: " + from + "\n\n"
}

// source names the image a SIF is built from, for the definition file and the
// build labels.
type source struct {
	// From is the reference as the user gave it ("myacr.azurecr.io/rdma:latest").
	From string
	// Name and Digest are the tag reference and manifest digest, when known.
	Name   string
	Digest string
}

// buildDate formats t as Apptainer's org.label-schema.build-date:
// Weekday_D_Month_YYYY_h:m:s_ZONE, without zero padding.
func buildDate(t time.Time) string {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	zone, _ := t.Zone()
	return t.Weekday().String() + "_" + strconv.Itoa(d) + "_" + m.String() + "_" + strconv.Itoa(y) + "_" +
		strconv.Itoa(hh) + ":" + strconv.Itoa(mm) + ":" + strconv.Itoa(ss) + "_" + zone
}

// labels merges the image's labels with the build labels Apptainer adds,
// which win, and renders labels.json as Apptainer does: sorted keys,
// tab-indented.
func labels(cfg *v1.Config, src source, arch, variant string, created time.Time) (map[string]string, []byte, error) {
	l := make(map[string]string, len(cfg.Labels)+12)
	for k, v := range cfg.Labels {
		l[k] = v
	}
	l["org.label-schema.schema-version"] = "1.0"
	l["org.opencontainers.image.created"] = created.Format(time.RFC3339)
	l["org.label-schema.build-date"] = buildDate(created)
	l["org.label-schema.usage.singularity.deffile.bootstrap"] = "docker"
	l["org.label-schema.usage.singularity.deffile.from"] = src.From
	if src.Name != "" && src.Digest != "" {
		l["org.opencontainers.image.base.name"] = src.Name
		l["org.opencontainers.image.base.digest"] = src.Digest
	}
	l["org.opencontainers.image.architecture"] = arch
	if variant != "" {
		l["org.opencontainers.image.variant"] = variant
	}
	l["org.label-schema.build-arch"] = arch
	text, err := json.MarshalIndent(l, "", "\t")
	if err != nil {
		return nil, nil, fmt.Errorf("rendering labels.json: %w", err)
	}
	return l, text, nil
}

// Paths of the generated files inside the image.
const (
	dockerEnvPath   = ".singularity.d/env/10-docker2singularity.sh"
	environmentPath = ".singularity.d/env/90-environment.sh"
	runscriptPath   = ".singularity.d/runscript"
	startscriptPath = ".singularity.d/startscript"
	labelsPath      = ".singularity.d/labels.json"
	deffilePath     = ".singularity.d/Singularity"
)

// inspectMetadata is the JSON of Apptainer's inspect-metadata.json object,
// which `apptainer inspect` reads instead of running a shell in the image.
type inspectMetadata struct {
	Data struct {
		Attributes inspectAttributes `json:"attributes"`
	} `json:"data"`
	Type string `json:"type"`
}

type inspectAttributes struct {
	Environment map[string]string `json:"environment,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Runscript   string            `json:"runscript,omitempty"`
	Test        string            `json:"test,omitempty"`
	Helpfile    string            `json:"helpfile,omitempty"`
	Deffile     string            `json:"deffile,omitempty"`
	Startscript string            `json:"startscript,omitempty"`
}

// genFile is a file the builder adds under its path in the image.
type genFile struct {
	path    string
	mode    uint32
	content string
}

// singularityFiles returns the /.singularity.d files and the metadata
// objects of the SIF for an image config.
func singularityFiles(cfg *v1.Config, src source, arch, variant string, created time.Time) (gen []genFile, deffile string, inspectJSON []byte, skippedEnv []string, err error) {
	fixed := []struct{ path, file string }{
		{".singularity.d/actions/exec", "exec.sh"},
		{".singularity.d/actions/run", "run.sh"},
		{".singularity.d/actions/shell", "shell.sh"},
		{".singularity.d/actions/start", "start.sh"},
		{".singularity.d/actions/test", "test.sh"},
		{".singularity.d/env/01-base.sh", "01-base.sh"},
		{environmentPath, "90-environment.sh"},
		{".singularity.d/env/95-apps.sh", "95-apps.sh"},
		{".singularity.d/env/99-base.sh", "99-base.sh"},
		{".singularity.d/env/99-runtimevars.sh", "99-runtimevars.sh"},
		{startscriptPath, "startscript.sh"},
	}
	gen = []genFile{{"etc/hosts", 0o644, ""}, {"etc/resolv.conf", 0o644, ""}}
	contents := map[string]string{}
	for _, f := range fixed {
		b, err := files.ReadFile("files/" + f.file)
		if err != nil {
			return nil, "", nil, nil, err
		}
		gen = append(gen, genFile{f.path, 0o755, string(b)})
		contents[f.path] = string(b)
	}
	envScript, skippedEnv := dockerEnvScript(cfg.Env)
	run, err := runscript(cfg.Entrypoint, cfg.Cmd)
	if err != nil {
		return nil, "", nil, nil, err
	}
	lmap, ljson, err := labels(cfg, src, arch, variant, created)
	if err != nil {
		return nil, "", nil, nil, err
	}
	deffile = definition(src.From)
	gen = append(gen,
		genFile{dockerEnvPath, 0o755, envScript},
		genFile{runscriptPath, 0o755, run},
		genFile{labelsPath, 0o644, string(ljson)},
		genFile{deffilePath, 0o644, deffile},
	)

	// Apptainer fills inspect-metadata.json from its inspect command, which
	// cuts the trailing newlines off every file it reads.
	trim := func(s string) string { return strings.TrimRight(s, "\n") }
	var md inspectMetadata
	md.Type = "container"
	md.Data.Attributes = inspectAttributes{
		Environment: map[string]string{
			"/" + dockerEnvPath:   trim(envScript),
			"/" + environmentPath: trim(contents[environmentPath]),
		},
		Labels:      lmap,
		Runscript:   trim(run),
		Deffile:     trim(deffile),
		Startscript: trim(contents[startscriptPath]),
	}
	inspectJSON, err = json.Marshal(md)
	if err != nil {
		return nil, "", nil, nil, fmt.Errorf("rendering inspect metadata: %w", err)
	}
	return gen, deffile, inspectJSON, skippedEnv, nil
}

package imagebuild_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hpcship/hpcship/imagebuild"
)

// FuzzParseDockerfile checks that any input parses to steps or fails with a
// *StepError, and that the steps' history strings can be made.
func FuzzParseDockerfile(f *testing.F) {
	for _, s := range []string{
		seedDockerfile,
		"FROM scratch\nCOPY --chown=1:1 --chmod=755 a b /c/\n",
		"ARG X=1\nFROM img:${X}\nARG X\nENV A=$X B=\"${X:-q}\"\nLABEL a=b\n",
		"FROM a\nHEALTHCHECK --interval=1s CMD [\"true\"]\nHEALTHCHECK NONE\n",
		"# escape=`\nFROM a\nRUN echo `\n  hi\n",
		"FROM a\nRUN <<EOF\nx\nEOF\n",
		"FROM a\nSHELL [\"/bin/bash\",\"-c\"]\nCMD [\"a\"]\nEXPOSE 1/udp\nVOLUME [\"/v\"]\nUSER u\nSTOPSIGNAL 9\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, df string) {
		d, err := imagebuild.ParseDockerfile(strings.NewReader(df))
		if err != nil {
			var se *imagebuild.StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *StepError", err, err)
			}
			return
		}
		if d.Base == nil {
			t.Fatal("parsed without a base")
		}
		steps, err := d.Steps([]string{"PATH=/bin"})
		if err != nil {
			var se *imagebuild.StepError
			if !errors.As(err, &se) || se.Line <= 0 {
				t.Fatalf("error %v is not a *StepError with a line", err)
			}
			return
		}
		for _, s := range steps {
			_ = s.String()
		}
	})
}

package cloudcarbonreceiver

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/clouds"
)

// TestREADMEAttributeTable: the repository README's table of resource
// attributes says what conventionOf does, for every cloud.
func TestREADMEAttributeTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z]+)` \\| `([a-z_]+)`[^|]* \\| [^|]+ \\| ([^|]+) \\|$")
	rows := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = [2]string{m[2], m[3]}
	}
	for _, pl := range clouds.All() {
		r, ok := rows[pl.Name]
		if !ok {
			t.Errorf("the README's attribute table has no row for %s", pl.Name)
			continue
		}
		c := conventionOf(pl.Name)
		if r[0] != c.provider {
			t.Errorf("README: %s is cloud.provider %s; the receiver says %s", pl.Name, r[0], c.provider)
		}
		if none := strings.HasPrefix(r[1], "none"); none != (c.region == nil) {
			t.Errorf("README: %s's cloud.region is %q; the receiver has a region rule: %v", pl.Name, r[1], c.region != nil)
		}
	}
}

package pypkg_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/magefab/magefab/release/pypkg"
	"github.com/magefab/magefab/sshx"
)

func ExampleParse() {
	pkgs, err := pypkg.Parse(strings.NewReader(`
# from S3
geo-utils==1.4.2
# from git, at a tag
billing==git@github.com:acme/billing.git==v2.0.1
# buedafab's lines: the archive maps.tar.gz from S3, a repository at HEAD
maps
search==git@github.com:acme/search.git
`), "requirements/private.txt")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range pkgs {
		fmt.Printf("%s:%d %s git=%v (%s)\n", p.File, p.Line, p.Name, p.IsGit(), p)
	}

	_, err = pypkg.Parse(strings.NewReader("geo-utils=1.4.2\n"), "requirements/private.txt")
	fmt.Println(err)
	// Output:
	// requirements/private.txt:3 geo-utils git=false (geo-utils==1.4.2)
	// requirements/private.txt:5 billing git=true (billing==git@github.com:acme/billing.git==v2.0.1)
	// requirements/private.txt:7 maps git=false (maps)
	// requirements/private.txt:8 search git=true (search==git@github.com:acme/search.git==HEAD)
	// pypkg: requirements/private.txt:1: name "geo-utils=1.4.2" contains '='; a name is letters, digits, '.', '_' and '-'; a line is name or name==version (an S3 archive, optionally followed by sha256=<64 hex digits>), name==git-url (its HEAD) or name==git-url==ref
}

func ExampleFetcher() {
	ctx := context.Background()
	pkgs, err := pypkg.ParseFile("requirements/private.txt")
	if err != nil {
		log.Fatal(err)
	}
	f := &pypkg.Fetcher{
		CacheDir: ".magefab/pypkg",
		S3:       pypkg.S3Config{Bucket: "acme-packages", Region: "us-east-1"},
		Log:      os.Stderr,
	}
	archives, err := f.FetchAll(ctx, pkgs)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(archives)
}

func ExampleInstall() {
	ctx := context.Background()
	h := sshx.NewLocal("")
	archives := []string{".magefab/pypkg/billing-v2.0.1.tar.gz"}
	if err := pypkg.Install(ctx, h, "/var/webapps/app/a/env", archives, []string{"pip", "install"}); err != nil {
		log.Fatal(err)
	}
	if err := pypkg.RunInstallScripts(ctx, h, "/var/webapps/app/a", []string{"scripts/install-geos.sh"}, "/var/webapps/app/a/env"); err != nil {
		log.Fatal(err)
	}
}

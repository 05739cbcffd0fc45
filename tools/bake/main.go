// Command modelops-bake is the builder of modelops' build Jobs: it appends one layer holding a directory
// (the models the Job's init container downloaded) to a base image (the generic service image), adds
// environment variables to its configuration, and pushes the result. No Dockerfile, no daemon, no root:
// the base image's filesystem is never unpacked, only its manifest and config are read and its layers
// copied registry to registry (go-containerregistry).
//
//	modelops-bake --base REF --destination REF --layer SRC:DEST [--env K=V]... [--plain-http HOST]...
//
// Credentials come from $DOCKER_CONFIG/config.json (a kubernetes.io/dockerconfigjson Secret mounted as a
// file), never from flags. The layer is reproducible: entries sorted, owner 0:0, modes 0644/0755, times
// fixed, so the same models on the same base give the same digest. The pushed digest is printed as one
// JSON line and written to the termination message (/dev/termination-log), where the operator reads it.
package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Exit codes the operator maps to status reasons (termination message "reason: detail").
const (
	exitUsage      = 2
	exitBaseImage  = 3 // the base image is not in its registry
	exitRefused    = 4 // the registry refused the credentials (reading the base or pushing)
	exitLayer      = 5 // the layer's directory cannot be read
	exitRegistry   = 6 // the registry failed otherwise (network, 5xx, deadline)
	terminationLog = "/dev/termination-log"
	fixedTime      = 946684800 // 2000-01-01T00:00:00Z: layer entries carry no build time
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type result struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
	Base   string `json:"base"`
	Layer  string `json:"layer"`
	Size   int64  `json:"layerSize"`
}

func fail(code int, reason string, err error) {
	msg := fmt.Sprintf("%s: %v", reason, err)
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	_ = os.WriteFile(terminationLog, []byte(msg), 0o644)
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(code)
}

// layerTar writes dir as a tar under dest (an absolute path in the image), reproducibly.
func layerTar(dir, dest string, w io.Writer) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: symbolic links are not baked", p)
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	when := time.Unix(fixedTime, 0).UTC()
	// The parent directories of dest, so that the layer stands on any base.
	parts := strings.Split(strings.Trim(dest, "/"), "/")
	for i := 1; i < len(parts); i++ {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i], "/") + "/", Mode: 0o755, ModTime: when}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		target := strings.Trim(dest, "/")
		if rel != "." {
			target += "/" + filepath.ToSlash(rel)
		}
		hdr := &tar.Header{Name: target, ModTime: when, Format: tar.FormatPAX}
		switch {
		case info.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, target+"/", 0o755
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
		default:
			return fmt.Errorf("%s: only files and directories are baked", p)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// classify maps a registry error to an exit code: refused (401, 403), missing (404, as `missing` says) or
// otherwise failed.
func classify(err error, missing int) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case 401, 403:
			return exitRefused
		case 404:
			return missing
		}
	}
	return exitRegistry
}

func main() {
	var envs, plain multi
	base := flag.String("base", "", "the base image (the generic service image)")
	destination := flag.String("destination", "", "where to push the result (repository:tag)")
	layer := flag.String("layer", "", "SRC:DEST: the directory to bake and where it goes in the image")
	scratch := flag.String("scratch", os.TempDir(), "where the layer's tar is staged")
	timeout := flag.Duration("timeout", 20*time.Minute, "total deadline of the build")
	flag.Var(&envs, "env", "K=V added to the image's environment (repeatable)")
	flag.Var(&plain, "plain-http", "a registry host:port spoken to over plain HTTP (repeatable)")
	flag.Parse()
	src, dest, ok := strings.Cut(*layer, ":")
	if *base == "" || *destination == "" || !ok || !strings.HasPrefix(dest, "/") {
		fail(exitUsage, "usage", errors.New("--base, --destination and --layer SRC:/DEST are required"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	parse := func(ref string) name.Reference {
		var opts []name.Option
		for _, host := range plain {
			if strings.HasPrefix(ref, host+"/") {
				opts = append(opts, name.Insecure)
			}
		}
		r, err := name.ParseReference(ref, opts...)
		if err != nil {
			fail(exitUsage, "bad reference", err)
		}
		return r
	}
	baseRef, destRef := parse(*base), parse(*destination)
	remoteOpts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}

	baseImg, err := remote.Image(baseRef, remoteOpts...)
	if err != nil {
		fail(classify(err, exitBaseImage), "base image", err)
	}
	manifest, err := baseImg.Manifest()
	if err != nil {
		fail(classify(err, exitBaseImage), "base image manifest", err)
	}
	mediaType := types.DockerLayer
	if manifest.MediaType == types.OCIManifestSchema1 {
		mediaType = types.OCILayer
	}
	staged, err := os.CreateTemp(*scratch, "layer-*.tar")
	if err != nil {
		fail(exitLayer, "scratch", err)
	}
	defer os.Remove(staged.Name())
	if err := layerTar(src, dest, staged); err != nil {
		fail(exitLayer, "layer", err)
	}
	if err := staged.Close(); err != nil {
		fail(exitLayer, "layer", err)
	}
	added, err := tarball.LayerFromFile(staged.Name(), tarball.WithMediaType(mediaType))
	if err != nil {
		fail(exitLayer, "layer", err)
	}
	img, err := mutate.AppendLayers(baseImg, added)
	if err != nil {
		fail(exitLayer, "append", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		fail(classify(err, exitBaseImage), "base image config", err)
	}
	config := cfg.Config.DeepCopy()
	config.Env = append(config.Env, envs...)
	if img, err = mutate.Config(img, *config); err != nil {
		fail(exitLayer, "config", err)
	}
	if err := remote.Write(destRef, img, remoteOpts...); err != nil {
		fail(classify(err, exitRegistry), "push", err)
	}
	digest, err := img.Digest()
	if err != nil {
		fail(exitRegistry, "digest", err)
	}
	layerDigest, _ := added.Digest()
	size, _ := added.Size()
	out := result{
		Image:  destRef.Context().Digest(digest.String()).String(),
		Digest: digest.String(),
		Base:   baseRef.String(),
		Layer:  layerDigest.String(),
		Size:   size,
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	// The termination message is the digest alone: the operator validates it as sha256:<64 hex>.
	_ = os.WriteFile(terminationLog, []byte(digest.String()), 0o644)
}

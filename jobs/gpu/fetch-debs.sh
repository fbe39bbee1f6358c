#!/usr/bin/env bash
# Downloads, on a Debian 12 machine with network, the packages llama-hpc needs
# that a bare GPU machine lacks (MPI, parallel HDF5, oneDNN, OpenBLAS, jansson, PCRE2,
# zstd, OpenSSL, SentencePiece: the runtime libraries with their dependencies,
# and the -dev packages for headers), into .gpu/debs (git-ignored).  jobs/gpu-validate.sh
# carries that folder to the GPU machine, where jobs/gpu/setup-prefix.sh
# unpacks it into a prefix (never into /).  Run it once:
#     bash jobs/gpu/fetch-debs.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.gpu/debs}

# The libraries the programs, mpirun/orted and MPI's plugins load, and what
# those need at run time (resolved by apt below).
RUNTIME=(openmpi-bin libopenmpi3 libhdf5-openmpi-103-1 libdnnl2 libopenblas0-openmp libjansson4
         libpcre2-8-0 libzstd1 libssl3 libsentencepiece0)
# Headers, .so links, the MPI compiler wrappers' data: these packages alone.
DEV=(libopenmpi-dev openmpi-common libhdf5-openmpi-dev libdnnl-dev libopenblas-openmp-dev libopenblas-dev
     libjansson-dev libpcre2-dev libzstd-dev libssl-dev libsentencepiece-dev)
# What every glibc Linux (the GPU machine's Ubuntu) already has, the compiler's
# own runtimes (its gcc's newer ones must win), tools the libraries'
# maintainer scripts use, and optional plugins that pull X11 (not OpenCL's ICD
# loader: oneDNN's library links libOpenCL.so.1).
SKIP='^(libc6|libc-bin|libgcc-s1|libstdc\+\+6|libgomp1|libatomic1|libquadmath0|zlib1g|gcc-[0-9]+-base|'\
'debconf|dpkg|tar|perl.*|libperl.*|'\
'adduser|passwd|libpam.*|libselinux1|libaudit.*|libsemanage.*|libsepol.*|libcap-ng0|libacl1|libattr1|'\
'libcrypt1|libbz2-1.0|liblzma5|libmd0|libbsd0|readline-common|libreadline8|libtinfo6|'\
'libgdbm.*|libsystemd0|libudev1|install-info|debianutils|cdebconf|libdebian-installer4|libnewt0.52|'\
'libslang2|libtextwrap1|openssh-client|libx11-.*|libx11-6|libxcb1|libxau6|libxdmcp6|libxext6|'\
'libxnvctrl0|libhwloc-plugins|libedit2|libfido2-1|libcbor0.8|libgpm2|'\
'libncursesw6|libuuid1|libffi8|libsqlite3-0|libpciaccess0|libxml2|libicu72)$'

deps=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
         --no-replaces --no-enhances --no-pre-depends "${RUNTIME[@]}" 2>/dev/null |
       grep -v '^ ' | grep -v '^<' | sort -u)
packages=$( (echo "$deps"; printf '%s\n' "${DEV[@]}") | grep -Ev "$SKIP" | sort -u)
mkdir -p "$OUT"
cd "$OUT"
rm -f ./*.deb
# shellcheck disable=SC2086
apt-get download $packages >/dev/null
echo "fetch-debs: $(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1) in $OUT"
# NCCL's header, for a machine whose libnccl (a PyTorch wheel's) comes without one.
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ -e "$CUDA_HOME/include/nccl.h" ]; then
  mkdir -p ../nccl && cp "$CUDA_HOME/include/nccl.h" ../nccl/
fi
# cuDNN's headers, for a machine whose libcudnn (a PyTorch wheel's) comes without them.
if ls "$CUDA_HOME"/include/cudnn*.h >/dev/null 2>&1; then
  mkdir -p ../cudnn/include && cp "$CUDA_HOME"/include/cudnn*.h ../cudnn/include/
fi
# cudnn-frontend's headers (cuDNN's flash attention), fetched from PyPI here:
# the GPU machine has no network.  The Makefile finds them in .gpu/cudnn-frontend.
cd - >/dev/null
if bash jobs/fetch-cudnn-frontend.sh; then
  rm -rf .gpu/cudnn-frontend && cp -r .deps/cudnn-frontend .gpu/cudnn-frontend
fi


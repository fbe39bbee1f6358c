# llama-hpc build.  `make` builds the programs, `make run` trains on the bundled
# corpus, `make test` runs the validation suite.  See README.md.
#
#   make SANITIZE=1 ...   AddressSanitizer + UndefinedBehaviorSanitizer build (in build-asan/)
#   make test-asan        the whole suite under that build
#   make test-full        the long suites (validation/full/: every layout of <= 8 ranks)
#   make CUDA=0           leave the CUDA backend out even when nvcc is found
#   make CUDNN=0          leave cuDNN's flash attention out even when cuDNN is found
#                         (CUDNN_HOME=dir: cuDNN outside the CUDA toolkit)
#   make CUDA_ARCH="90"   GPU architectures of the CUDA backend (default 80 90)
#   make NVCC_WERROR=     CUDA warnings not fatal (another host compiler's new warnings)
#   make fuzz             libFuzzer harnesses (validation/fuzz, clang) for the parsers, each
#                         run FUZZ_SECONDS (default 180); not part of `make test`;
#                         FUZZ_NAMES="jsonl deck" runs only those
#   make test-mutants     mutation testing (validation/mutants/mutants.txt): every listed
#                         breakage must fail a test; MUTANTS=a,b runs those only
#   make BLAS=openblas    the CPU backend's sgemm from OpenBLAS (libopenblas-openmp-dev), or
#                         BLAS=blis from BLIS (libblis-dev), in build-openblas/ or build-blis/;
#                         the default is oneDNN's (the fastest here: README, "CPU speed")
#   make DEPS=/prefix     MPI, HDF5, OpenBLAS, ... unpacked under /prefix instead of / (the
#                         GPU machine: jobs/gpu/setup-prefix.sh); NCCL_HOME=dir when nccl.h
#                         and libnccl are not in the CUDA toolkit

SHELL     := /bin/bash
CC        := mpicc
MULTIARCH := $(shell gcc -print-multiarch)
DEPS      ?=
HDF5_DIR  := $(DEPS)/usr/lib/$(MULTIARCH)/hdf5/openmpi
# The BLAS of the CPU backend's sgemm (src/backend/sgemm.c): oneDNN, OpenBLAS (OpenMP
# build) or BLIS (OpenMP build); a non-default one builds in a folder of its own.
BLAS      ?= onednn
ifeq ($(BLAS),openblas)
BLAS_DIR  := $(DEPS)/usr/lib/$(MULTIARCH)/openblas-openmp
BLAS_INC  := -I$(DEPS)/usr/include/$(MULTIARCH)/openblas-openmp
BLAS_LIB  := -lopenblas
BUILD     ?= build-openblas
else ifeq ($(BLAS),blis)
BLAS_DIR  := $(DEPS)/usr/lib/$(MULTIARCH)/blis-openmp
BLAS_INC  := -isystem $(DEPS)/usr/include/$(MULTIARCH)/blis-openmp -DLLAMA_BLIS
BLAS_LIB  := -lblis
BUILD     ?= build-blis
else ifeq ($(BLAS),onednn)
BLAS_DIR  := $(DEPS)/usr/lib/$(MULTIARCH)
BLAS_INC  := -DLLAMA_ONEDNN
BLAS_LIB  := -ldnnl
else
$(error BLAS=$(BLAS): choose openblas, blis or onednn)
endif

ifeq ($(SANITIZE),1)
BUILD     ?= build-asan
OPT       ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN     := -fsanitize=address,undefined
else
BUILD     ?= build
OPT       ?= -O3 -g -march=native
endif

CPPFLAGS  += -D_GNU_SOURCE -Isrc -Iio -I$(DEPS)/usr/include/hdf5/openmpi $(BLAS_INC)
# -fno-math-errno: nothing reads errno after sqrtf/expf, and with errno to set
# GCC vectorises no loop that calls them (AdamW ran 6× under the memory's pace).
CFLAGS    += -std=c11 -Wall -Wextra -fopenmp -fno-math-errno $(OPT) -MMD -MP
LDFLAGS   += -fopenmp $(LDSAN) -L$(HDF5_DIR) -Wl,-rpath,$(HDF5_DIR) -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR)
ifneq ($(DEPS),)
CPPFLAGS  += -I$(DEPS)/usr/include -I$(DEPS)/usr/include/$(MULTIARCH)
LDFLAGS   += -L$(DEPS)/usr/lib/$(MULTIARCH) -Wl,-rpath,$(DEPS)/usr/lib/$(MULTIARCH)
endif
# The SentencePiece library (tokenizer.model files; io/tokenizer/sentencepiece_model.cc,
# the one C++ file of io/, is its C face): pkg-config's flags, or the plain names.
SPM_CFLAGS := $(shell pkg-config --cflags sentencepiece 2>/dev/null)
SPM_LIBS  := $(or $(shell pkg-config --libs sentencepiece 2>/dev/null),-lsentencepiece -lsentencepiece_train)
LDLIBS    += -lhdf5 -ljansson -lpcre2-8 -lzstd -lcrypto $(BLAS_LIB) $(SPM_LIBS) -lstdc++ -lm
CPU_LDLIBS := $(LDLIBS)
IO_CXXFLAGS = -std=c++17 -Wall -Wextra $(OPT) $(SPM_CFLAGS) -MMD -MP

LIB_SRC   := $(wildcard src/*/*.c io/*/*.c)
LIB_SRC   := $(filter-out src/app/%,$(LIB_SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
IO_CXX_SRC := $(wildcard io/*/*.cc)
LIB_OBJ   += $(IO_CXX_SRC:%.cc=$(BUILD)/obj/%.o)
# The emulated backend's programs link cuda/ directly: without ops.o (its own,
# with LLAMA_CUDA) and the forwarders to libllama-cuda.so.
CPU_OBJ   := $(filter-out $(addprefix $(BUILD)/obj/src/,backend/ops.o backend/cuda_library.o \
               comm/comm_nccl.o),$(LIB_OBJ))

# The CUDA backend: built when nvcc is on the PATH or in /usr/local/cuda, unless CUDA=0,
# as a library of its own, $(BUILD)/libllama-cuda.so, which the programs load
# when a run asks for --device cuda (src/backend/cuda_library.c): a CPU run and
# the tools load none of the CUDA libraries, and run on nodes without them.
ifneq ($(CUDA),0)
NVCC      ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
endif
ifneq ($(strip $(NVCC)),)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCH ?= 80 90
CU_SRC    := $(wildcard cuda/*.cu)
CU_OBJ    := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
# Host-only C++ of the backend (no kernels: cuDNN's attention), by the host compiler.
CUDA_CC_SRC := $(wildcard cuda/*.cc)
CU_OBJ    += $(CUDA_CC_SRC:%.cc=$(BUILD)/obj/%.o)
CUDA_CXXFLAGS = -std=c++17 -O2 -g -fPIC -Wall -Wextra -fopenmp -I$(CUDA_HOME)/include $(CUDNN_FLAGS) -MMD -MP
CUDA_LIB  := $(BUILD)/libllama-cuda.so
CPPFLAGS  += -DLLAMA_CUDA
# The programs export their functions to the library (info, comm_broadcast, ...)
# and find it next to them (the tests: one folder up).
LDFLAGS   += -rdynamic -Wl,-rpath,'$$ORIGIN:$$ORIGIN/..'
LDLIBS    += -ldl
NVCCFLAGS ?= -O3 -g -lineinfo
NVCC_WERROR ?= -Werror all-warnings
NVCCFLAGS += -std=c++17 --expt-relaxed-constexpr $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
             -Xcompiler -Wall,-Wextra,-fopenmp,-fPIC $(NVCC_WERROR) -MMD -MP
ifneq ($(NCCL_HOME),)
CPPFLAGS  += -I$(NCCL_HOME)/include
CUDA_LDFLAGS += -L$(NCCL_HOME)/lib -Wl,-rpath,$(NCCL_HOME)/lib
endif
CUDA_LDFLAGS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64
CUDA_LDLIBS  += -lcublasLt -lcublas -lnccl -lcudart -lstdc++
# cuDNN's flash attention (cuda/attention_cudnn.cu): when cudnn.h and libcudnn.so.9
# are found (the CUDA toolkit, or CUDNN_HOME: a cuDNN install or the nvidia-cudnn
# wheel's folder) and cudnn-frontend's headers (make deps fetches them), unless CUDNN=0.
ifneq ($(CUDNN),0)
CUDNN_HOME     ?= $(CUDA_HOME)
CUDNN_INC      := $(firstword $(wildcard $(CUDNN_HOME)/include/cudnn.h))
CUDNN_LIBDIR   := $(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDNN_HOME)/lib64/libcudnn.so.9 \
                  $(CUDNN_HOME)/lib/libcudnn.so.9 $(CUDNN_HOME)/lib/$(MULTIARCH)/libcudnn.so.9))))
CUDNN_FRONTEND ?= $(firstword $(wildcard .deps/cudnn-frontend/include .gpu/cudnn-frontend/include))
ifneq ($(and $(CUDNN_INC),$(CUDNN_LIBDIR),$(CUDNN_FRONTEND)),)
CUDNN_FLAGS := -DLLAMA_CUDNN -isystem $(CUDNN_HOME)/include -isystem $(CUDNN_FRONTEND)
CPPFLAGS  += -DLLAMA_CUDNN_BUILT   # the programs know it without loading the library
CUDA_LDFLAGS += -L$(CUDNN_LIBDIR) -Wl,-rpath,$(CUDNN_LIBDIR)
CUDA_LDLIBS  += -l:libcudnn.so.9 -lnvrtc   # nvrtc: the frontend's runtime-compiled engines
endif
endif
# The CPU emulator of the kernels (validation/emu): the same cuda/*.cu built by
# the host compiler against the emulator's CUDA headers (validation/emu/include,
# first on the include path: <cuda_runtime.h>, <nccl.h>; the toolkit's for the
# rest), linked with its runtime, cuBLASLt and NCCL (MPI) and the CPU library;
# no GPU, cuBLAS or NCCL needed.
EMU_LIB   := $(BUILD)/emu/cuda_emu.o $(BUILD)/emu/cublaslt_emu.o $(BUILD)/emu/nccl_emu.o
EMU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/emu/%.o) $(CUDA_CC_SRC:%.cc=$(BUILD)/emu/%.o) \
             $(BUILD)/emu/src/backend/ops.o $(EMU_LIB)
EMU_INC   := -Ivalidation/emu/include -Ivalidation/emu
EMU_FLAGS := -std=c++17 -O1 -g -Wall -Wextra -Wno-unknown-pragmas -fno-strict-aliasing -fopenmp \
             -I$(CUDA_HOME)/include -MMD -MP
EMU_BINS  := $(BUILD)/tests/test_gpu_emu $(BUILD)/emu/llama-train $(BUILD)/tests/test_mma_emu
ifeq ($(SANITIZE),1)
EMU_BINS  :=   # fibers switch stacks behind AddressSanitizer's back
endif
endif
PROGRAMS  := $(patsubst src/app/%_main.c,$(BUILD)/llama-%,$(wildcard src/app/*_main.c))
TEST_SRC  := $(wildcard validation/unit/test_*.c)
TESTS     := $(TEST_SRC:validation/unit/%.c=$(BUILD)/tests/%)
GPU_TEST_SRC := $(wildcard validation/gpu/test_*.c)
TESTS     += $(GPU_TEST_SRC:validation/gpu/%.c=$(BUILD)/tests/%) $(EMU_BINS)

.PHONY: all deps programs run run-spm test test-full test-asan test-mutants bench fuzz fuzz-build clean
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory programs

deps:
	@bash jobs/install-deps.sh
ifneq ($(and $(strip $(NVCC)),$(CUDNN_INC)),)
	@bash jobs/fetch-cudnn-frontend.sh || true
endif

programs: $(PROGRAMS) $(TESTS) $(CUDA_LIB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/io/%.o: io/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(IO_CXXFLAGS) -c $< -o $@

$(BUILD)/obj/cuda/%.o: cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(shell mpicc --showme:incdirs | sed 's/^/-I/; s/ / -I/g') $(NVCCFLAGS) -c $< -o $@

$(BUILD)/obj/cuda/%.o: cuda/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CUDA_CXXFLAGS) -c $< -o $@

$(BUILD)/libllama.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# -Bsymbolic: the library's calls of its own functions stay inside it (the
# programs define forwarders of the same names).
$(CUDA_LIB): $(CU_OBJ)
	$(CXX) -shared -fopenmp -Wl,-Bsymbolic $(CUDA_LDFLAGS) $^ $(CUDA_LDLIBS) -o $@

$(BUILD)/llama-%: $(BUILD)/obj/src/app/%_main.o $(BUILD)/libllama.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/validation/unit/%.o $(BUILD)/libllama.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/validation/gpu/%.o $(BUILD)/libllama.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/obj/validation/unit/%.o $(BUILD)/obj/validation/gpu/%.o: CPPFLAGS += -Ivalidation/unit

# The emulated backend: kernels and ops table by the host compiler (the
# emulator's headers before everything else; no LLAMA_CUDNN, so no cuDNN);
# ops.c with LLAMA_CUDA so --device cuda reaches it; the CPU library for the rest.
$(BUILD)/emu/cuda/%.o: cuda/%.cu
	@mkdir -p $(dir $@)
	$(CXX) -x c++ $(EMU_INC) $(CPPFLAGS) $(shell mpicc --showme:incdirs | sed 's/^/-I/; s/ / -I/g') $(EMU_FLAGS) -c $< -o $@

$(BUILD)/emu/cuda/%.o: cuda/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_INC) $(CPPFLAGS) $(EMU_FLAGS) -c $< -o $@

# The emulator itself: runtime (cuda_emu), cuBLASLt products, NCCL over MPI.
$(BUILD)/emu/%_emu.o: validation/emu/%_emu.cc
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_INC) $(shell mpicc --showme:incdirs | sed 's/^/-I/; s/ / -I/g') $(EMU_FLAGS) -c $< -o $@

$(BUILD)/emu/src/backend/ops.o: src/backend/ops.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/emu/obj/test_gpu_ops.o: validation/gpu/test_gpu_ops.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ivalidation/unit -DLLAMA_GPU_EMU $(CFLAGS) -c $< -o $@

$(BUILD)/tests/test_gpu_emu: $(BUILD)/emu/obj/test_gpu_ops.o $(EMU_OBJ) $(CPU_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(CPU_LDLIBS) -lstdc++ -o $@

# The tensor-core primitives (cuda/mma.cuh) against plain products, emulated;
# the same source runs on a GPU (see its header).
$(BUILD)/tests/test_mma_emu: validation/emu/test_mma_primitives.cu $(BUILD)/emu/cuda_emu.o
	@mkdir -p $(dir $@)
	$(CXX) -x c++ $(EMU_INC) $(EMU_FLAGS) -Icuda -c $< -o $(BUILD)/emu/test_mma_primitives.o
	$(CXX) $(BUILD)/emu/test_mma_primitives.o $(BUILD)/emu/cuda_emu.o -o $@

$(BUILD)/emu/llama-train: $(BUILD)/obj/src/app/train_main.o $(EMU_OBJ) $(CPU_OBJ)
	$(CC) $(LDFLAGS) $^ $(CPU_LDLIBS) -lstdc++ -o $@

# The main job: tokenize the bundled corpus, train a small model on it, evaluate, sample.
run: all
	@BUILD=$(BUILD) bash jobs/quickstart.sh

# The same with a LLaMA-style SentencePiece vocabulary (inputs/quickstart-spm.deck).
run-spm: all
	@BUILD=$(BUILD) DECK=inputs/quickstart-spm.deck bash jobs/quickstart.sh

# The whole validation suite; its last line is "N passed, N failed".
test: all
	@BUILD=$(BUILD) bash validation/run.sh

# The long suites (validation/full/): every layout of at most 8 ranks against one
# rank; about 7 minutes on 2 cores.
test-full: all
	@BUILD=$(BUILD) LLAMA_FULL=1 bash validation/run.sh full/

test-asan:
	@$(MAKE) --no-print-directory SANITIZE=1 test

# Mutation testing: each deliberate breakage of validation/mutants/mutants.txt,
# applied to a scratch copy of the tree (MUTANT_DIR, default /tmp/llama-mutants),
# must make one of its tests fail (validation/mutants/run.sh; MUTANTS=a,b runs
# those only).  Not part of `make test`: 18 to 21 minutes on 2 cores.
test-mutants: deps
	@bash validation/mutants/run.sh

bench: all
	@bash jobs/bench-cpu.sh

# libFuzzer harnesses for the parsers of files a user hands us (validation/fuzz/
# fuzz_*.c), built by clang with AddressSanitizer and UBSan into $(BUILD)/fuzz/
# with the parsers instrumented, then each run for FUZZ_SECONDS from a seed
# corpus made of the tests' inputs (validation/fuzz/seeds.sh).  Installs nothing.
FUZZ_CC      ?= clang
FUZZ_CXX     ?= $(FUZZ_CC:clang%=clang++%)
FUZZ_SECONDS ?= 180
FUZZ_SRC     := io/text/jsonl.c io/text/deck.c io/tokenizer/tokenizer.c io/tokenizer/added_tokens.c \
                io/tokenizer/bpe.c io/tokenizer/byte_level.c io/tokenizer/pretokenizer.c \
                io/tokenizer/normalizer.c io/tokenizer/decoder.c \
                io/hf/safetensors.c io/hf/hf_config.c io/fs/atomic_file.c io/hdf5/shards.c \
                src/core/util.c src/core/hashmap.c src/core/config.c src/train/model_file.c
FUZZ_OBJ     := $(FUZZ_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
# tokenizer.c reaches the SentencePiece library through this C++ file
FUZZ_CXX_SRC := io/tokenizer/sentencepiece_model.cc
FUZZ_OBJ     += $(FUZZ_CXX_SRC:%.cc=$(BUILD)/fuzz/obj/%.o)
FUZZ_NAMES   := $(patsubst validation/fuzz/fuzz_%.c,%,$(wildcard validation/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%)
# FUZZ_HDF5=PREFIX: fuzz against the (parallel) HDF5 installed there instead of
# the system's (Debian 12's 1.10.8 has heap overflows of its own on corrupt
# files; see README, make fuzz)
FUZZ_HDF5    ?=
FUZZ_HDF5_LIB = $(if $(FUZZ_HDF5),$(FUZZ_HDF5)/lib,$(HDF5_DIR))
FUZZ_CFLAGS   = -std=c11 -Wall -Wextra -g -O1 -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                $(if $(FUZZ_HDF5),-I$(FUZZ_HDF5)/include) \
                $(filter-out -I%openblas-openmp,$(CPPFLAGS)) $(shell mpicc --showme:incdirs 2>/dev/null | sed 's/^/-I/; s/ / -I/g')
FUZZ_LDLIBS   = -L$(FUZZ_HDF5_LIB) -Wl,-rpath,$(FUZZ_HDF5_LIB) -lhdf5 -ljansson -lpcre2-8 -lzstd -lcrypto \
                $(SPM_LIBS) -lstdc++ -lm \
                $(shell mpicc --showme:link 2>/dev/null)

fuzz: fuzz-build $(BUILD)/llama-tokenize
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) bash validation/fuzz/run.sh $(FUZZ_NAMES)

fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: '$(FUZZ_CC)' not found; libFuzzer comes with clang: apt-get install clang (or make fuzz FUZZ_CC=clang-NN)" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

.SECONDARY: $(FUZZ_OBJ)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(filter-out -std=c11,$(FUZZ_CFLAGS)) -std=c++17 -fno-sanitize=vptr $(SPM_CFLAGS) \
	    -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/fuzz_%: validation/fuzz/fuzz_%.c validation/fuzz/fuzz_input.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) $(FUZZ_LDLIBS) -o $@

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj $(BUILD)/emu -name '*.d' 2>/dev/null)

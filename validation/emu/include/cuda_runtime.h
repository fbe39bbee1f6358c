// The emulator build's <cuda_runtime.h> (validation/emu/include comes first on
// its include path): the toolkit's runtime API declarations and types, which
// compile as host C++, and the emulator's device model (cuda_emu.h) in place
// of nvcc's built-ins: __global__ and friends, threadIdx, barriers, shuffles,
// the launch hooks and the PTX primitives.  The runtime calls are implemented
// on host memory by cuda_emu.cc.
#pragma once

#include <cuda_runtime_api.h>

#include "../cuda_emu.h"

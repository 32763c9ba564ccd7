# CMake toolchain for QEMU's mps3-an547 (Cortex-M55 with Helium/MVE, FPU): arm-none-eabi-gcc + newlib
# (semihosting). -mcpu=cortex-m55 enables MVE (integer and float) and the DSP extension; ARM_MATH_MVEI
# selects CMSIS-DSP's Helium integer code paths (its q15 FFT among them).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(BL_ARCH_FLAGS "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard")
set(CMAKE_C_FLAGS_INIT "${BL_ARCH_FLAGS} -DARM_MATH_MVEI -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${BL_ARCH_FLAGS}")
# Our own startup (firmware/platform/cortex-m) replaces crt0; rdimon supplies semihosting syscalls.
set(CMAKE_EXE_LINKER_FLAGS_INIT "${BL_ARCH_FLAGS} -nostartfiles -specs=rdimon.specs -Wl,--gc-sections")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

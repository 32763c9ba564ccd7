# CMake toolchain for the msp430fr5969: clang --target=msp430 + ld.lld-14 (through tools/msp430/msp430-elf-ld).
# LLVM 14 only has the 16-bit small memory model; the __mspabi_* helpers come from firmware/platform/msp430.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR msp430)
set(CMAKE_C_COMPILER clang)
set(CMAKE_C_COMPILER_TARGET msp430)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
get_filename_component(_bl_shim "${CMAKE_CURRENT_LIST_DIR}/../../tools/msp430" ABSOLUTE)
set(CMAKE_C_FLAGS_INIT "-D__MSP430FR5969__ -mhwmult=f5series -ffreestanding -ffunction-sections -fdata-sections")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostdlib -B${_bl_shim} -Wl,--gc-sections")
find_program(BL_SIZE_TOOL NAMES llvm-size-14 llvm-size)

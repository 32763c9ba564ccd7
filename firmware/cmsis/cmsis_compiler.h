/* batteryless: the compiler layer CMSIS-DSP expects from CMSIS-Core, written for GCC (arm-none-eabi-gcc)
 * on Armv7E-M (Cortex-M4). Only what CMSIS-DSP's basic/complex/transform/statistics/support/matrix code
 * uses is defined: attribute macros, and the DSP/saturation intrinsics mapped onto GCC's <arm_acle.h> (or
 * inline assembly where ACLE has no equivalent). Written for this project; CMSIS-Core is not used. */
#ifndef BL_CMSIS_COMPILER_H
#define BL_CMSIS_COMPILER_H

#include <stdint.h>

#if !defined(__GNUC__) || !defined(__arm__)
#error "batteryless cmsis_compiler.h supports arm-none-eabi-gcc only"
#endif

#include <arm_acle.h>

#define __ASM __asm
#define __INLINE inline
#define __STATIC_INLINE static inline
#define __STATIC_FORCEINLINE static inline __attribute__((always_inline))
#define __NO_RETURN __attribute__((__noreturn__))
#define __USED __attribute__((used))
#define __WEAK __attribute__((weak))
#define __PACKED __attribute__((packed, aligned(1)))
#define __PACKED_STRUCT struct __attribute__((packed, aligned(1)))
#define __PACKED_UNION union __attribute__((packed, aligned(1)))
#define __ALIGNED(x) __attribute__((aligned(x)))
#define __RESTRICT __restrict

/* Count leading zeros (CLZ returns 32 for 0; __builtin_clz(0) is undefined, so test first). */
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
  return (uint8_t)(value == 0U ? 32U : (uint32_t)__builtin_clz(value));
}

/* Rotate right. */
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t op1, uint32_t op2)
{
  op2 &= 31U;
  return op2 == 0U ? op1 : (op1 >> op2) | (op1 << (32U - op2));
}

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
/* Signed/unsigned saturation to a bit width; the width must be a compile-time constant (SSAT/USAT). */
#define __SSAT(ARG1, ARG2) __ssat((int32_t)(ARG1), (ARG2))
#define __USAT(ARG1, ARG2) __usat((int32_t)(ARG1), (ARG2))
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* Saturating 32-bit add/subtract. */
#define __QADD(a, b) __qadd((int32_t)(a), (int32_t)(b))
#define __QSUB(a, b) __qsub((int32_t)(a), (int32_t)(b))

/* SIMD on packed 8/16-bit lanes. ACLE types int16x2_t/int8x4_t are plain 32-bit integers in GCC. */
#define __QADD8(a, b) ((uint32_t)__qadd8((int8x4_t)(a), (int8x4_t)(b)))
#define __QSUB8(a, b) ((uint32_t)__qsub8((int8x4_t)(a), (int8x4_t)(b)))
#define __QADD16(a, b) ((uint32_t)__qadd16((int16x2_t)(a), (int16x2_t)(b)))
#define __QSUB16(a, b) ((uint32_t)__qsub16((int16x2_t)(a), (int16x2_t)(b)))
#define __SHADD16(a, b) ((uint32_t)__shadd16((int16x2_t)(a), (int16x2_t)(b)))
#define __SHSUB16(a, b) ((uint32_t)__shsub16((int16x2_t)(a), (int16x2_t)(b)))
#define __QASX(a, b) ((uint32_t)__qasx((int16x2_t)(a), (int16x2_t)(b)))
#define __QSAX(a, b) ((uint32_t)__qsax((int16x2_t)(a), (int16x2_t)(b)))
#define __SHASX(a, b) ((uint32_t)__shasx((int16x2_t)(a), (int16x2_t)(b)))
#define __SHSAX(a, b) ((uint32_t)__shsax((int16x2_t)(a), (int16x2_t)(b)))
#define __SXTB16(a) ((uint32_t)__sxtb16((int8x4_t)(a)))

/* Dual 16x16 multiplies with 32- or 64-bit accumulation. */
#define __SMUAD(a, b) ((uint32_t)__smuad((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUADX(a, b) ((uint32_t)__smuadx((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUSD(a, b) ((uint32_t)__smusd((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUSDX(a, b) ((uint32_t)__smusdx((int16x2_t)(a), (int16x2_t)(b)))
#define __SMLAD(a, b, c) ((uint32_t)__smlad((int16x2_t)(a), (int16x2_t)(b), (int32_t)(c)))
#define __SMLADX(a, b, c) ((uint32_t)__smladx((int16x2_t)(a), (int16x2_t)(b), (int32_t)(c)))
#define __SMLSDX(a, b, c) ((uint32_t)__smlsdx((int16x2_t)(a), (int16x2_t)(b), (int32_t)(c)))
#define __SMLALD(a, b, c) ((uint64_t)__smlald((int16x2_t)(a), (int16x2_t)(b), (int64_t)(c)))
#define __SMLALDX(a, b, c) ((uint64_t)__smlaldx((int16x2_t)(a), (int16x2_t)(b), (int64_t)(c)))

/* SMMLA: most significant word of a 32x32 product plus an accumulator (no ACLE intrinsic). */
__STATIC_FORCEINLINE int32_t __SMMLA(int32_t op1, int32_t op2, int32_t op3)
{
  int32_t result;
  __ASM volatile("smmla %0, %1, %2, %3" : "=r"(result) : "r"(op1), "r"(op2), "r"(op3));
  return result;
}

/* Pack halfwords (PKHBT/PKHTB); the shift must be a constant, as in the instructions. */
#define __PKHBT(ARG1, ARG2, ARG3) \
  ((((int32_t)(ARG1) << 0) & (int32_t)0x0000FFFF) | (((int32_t)(ARG2) << (ARG3)) & (int32_t)0xFFFF0000))
#define __PKHTB(ARG1, ARG2, ARG3) \
  ((((int32_t)(ARG1) << 0) & (int32_t)0xFFFF0000) | (((int32_t)(ARG2) >> (ARG3)) & (int32_t)0x0000FFFF))
#endif /* __ARM_FEATURE_DSP */

#endif /* BL_CMSIS_COMPILER_H */

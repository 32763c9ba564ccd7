/* The MSP430FR5994's CRC32 module, CRC-32 part (SLAU367 chapter "CRC32 Module": §"CRC Standard and Bit
 * Order", §"CRC Implementation", register table "CRC32 Registers"; base address 0x0980 from the SLASE54D
 * peripheral file map), included by bl_msp430sim.c. Modelled from the user's guide, not from silicon:
 *
 *   CRC32INIRESW0/W1 (+0x08/+0x0A)  the signature in the guide's bit order (bit 0 = the polynomial's MSB
 *                                   end); writing them seeds it;
 *   CRC32RESRW1/W0   (+0x0C/+0x0E)  the same signature bit-reversed: read as one little-endian 32-bit value
 *                                   at +0x0C it is the reflected CRC-32 register of zlib / IEEE 802.3
 *                                   (polynomial 0xEDB88320 reflected), so ~RESR is zlib.crc32 after a seed
 *                                   of 0xFFFFFFFF;
 *   CRC32DIW0        (+0x00)        data in, not bit-reversed: a byte write adds that byte, a word write its
 *                                   low byte then its high byte (memory order, the bits of each byte LSB
 *                                   first, as the reflected CRC-32 takes them).
 *
 * Not modelled (plain registers, no effect on the signature; the firmware does not use them): CRC32DIW1,
 * the bit-reversed data inputs CRC32DIRBW0/W1, the CRC16 half of the module (+0x10..+0x1F), and the one-cycle
 * delay before a result can be read (the firmware reads it later than that anyway). Power-up value of every
 * register: 0 (as the rest of the simulator's peripherals). The firmware does not trust this model blindly:
 * checkpointing/flex.c probes the module at every boot with a known word and falls back to its software
 * CRC-32 if the result differs (mspdebug's simulator, the FR5969, a misread bit order on silicon). */
#define CRC32_BASE 0x0980u
#define CRC32_END (CRC32_BASE + 0x10u)

static uint32_t crc32_bitrev(uint32_t v)
{
  uint32_t r = 0u;
  for (int i = 0; i < 32; i++) {
    r = (r << 1) | (v & 1u);
    v >>= 1;
  }
  return r;
}

static uint32_t crc32_word_at(const sim_t *s, uint32_t a)
{
  return (uint32_t)s->mem[a] | ((uint32_t)s->mem[a + 1u] << 8) | ((uint32_t)s->mem[a + 2u] << 16) |
         ((uint32_t)s->mem[a + 3u] << 24);
}

static void crc32_put_word_at(sim_t *s, uint32_t a, uint32_t v)
{
  for (uint32_t i = 0; i < 4u; i++) {
    s->mem[a + i] = (uint8_t)(v >> (8u * i));
  }
}

/* a write to the module at a (already stored into s->mem by the caller); keeps INIRES and RESR consistent */
static void crc32_written(sim_t *s, uint32_t a, uint16_t v, int byte)
{
  uint32_t off = a - CRC32_BASE;
  uint32_t reflected = crc32_bitrev(crc32_word_at(s, CRC32_BASE + 0x08u)); /* the zlib-order register */
  if ((off & ~1u) == 0x00u) { /* CRC32DIW0: one byte, or a word's two bytes in memory order */
    int n = byte ? 1 : 2;
    for (int i = 0; i < n; i++) {
      reflected ^= (uint8_t)(v >> (8 * i));
      for (int b = 0; b < 8; b++) {
        reflected = (reflected >> 1) ^ ((reflected & 1u) ? 0xEDB88320u : 0u);
      }
    }
    crc32_put_word_at(s, CRC32_BASE + 0x08u, crc32_bitrev(reflected));
  } else if ((off & ~1u) == 0x0Cu || (off & ~1u) == 0x0Eu) {
    /* the result-reverse registers are read-only: the write is undone below */
  } else if ((off & ~3u) != 0x08u) {
    return; /* registers that do not touch the signature */
  }
  crc32_put_word_at(s, CRC32_BASE + 0x0Cu, crc32_bitrev(crc32_word_at(s, CRC32_BASE + 0x08u)));
}

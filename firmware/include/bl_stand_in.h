/* Marks a firmware image that links a STAND-IN: code that lets the image link (and be measured) but does
 * not compute on the real part. BL_STAND_IN(id, "reason") puts "BL-STAND-IN: reason" into the image's
 * loaded bytes (read-only data in code memory), so the mark survives conversion of the ELF to Intel HEX or
 * TI-TXT: `batteryless build` warns and `batteryless flash` refuses such an image, quoting the reason
 * (host/batteryless/stand_in.py reads it). Remove the BL_STAND_IN line together with the stand-in.
 * `retain` keeps it through --gc-sections although no code refers to it. */
#ifndef BL_STAND_IN_H
#define BL_STAND_IN_H

#define BL_STAND_IN(id, reason)                                                                      \
    __attribute__((used, retain, section(".rodata.bl_stand_in"))) static const char bl_stand_in_##id[] = \
        "BL-STAND-IN: " reason

#endif /* BL_STAND_IN_H */

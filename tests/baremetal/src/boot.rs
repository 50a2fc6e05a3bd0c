//! Entry from QEMU's PVH boot: 32-bit protected mode, paging off, `ebx` = the physical address
//! of the `hvm_start_info` structure (Xen's PVH boot ABI, `xen/include/public/arch-x86/hvm/
//! start_info.h`). The assembly builds identity-mapped page tables for the first 4 GiB (2 MiB
//! pages), enters long mode (Intel SDM Vol. 3A §10.8.5, "Initializing IA-32e Mode") and calls
//! `kmain(start_info)` on a stack of its own.

use crate::paging::{BOOT_PD, BOOT_PDPT, BOOT_PML4};

/// Bytes of stack for everything after the boot code.
const STACK_SIZE: usize = 256 * 1024;

/// The stack (in .bss: zeroed by the boot code).
#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

#[no_mangle]
static mut BOOT_STACK: Stack = Stack([0; STACK_SIZE]);

core::arch::global_asm!(
    // The ELF note QEMU's loader looks for in PT_NOTE segments: name "Xen", type 18
    // (XEN_ELFNOTE_PHYS32_ENTRY), the 32-bit entry point. QEMU reads the descriptor of a
    // 64-bit ELF as 8 bytes, as Linux's `_ASM_PTR` note provides.
    ".pushsection .note.pvh, \"a\"",
    ".balign 4",
    ".long 4, 8, 18",
    ".asciz \"Xen\"",
    ".quad pvh_start32",
    ".popsection",
    //
    ".pushsection .text.boot, \"ax\"",
    ".code32",
    ".global pvh_start32",
    "pvh_start32:",
    "cli",
    "cld",
    "mov esi, ebx",
    // Zero .bss: the page tables and the stack live there.
    "mov edi, offset __bss_start",
    "mov ecx, offset __bss_end",
    "sub ecx, edi",
    "xor eax, eax",
    "rep stosb",
    // PML4[0] -> PDPT; PDPT[0..4] -> the four page directories.
    "mov eax, offset {pdpt}",
    "or eax, 3",
    "mov [{pml4}], eax",
    "mov edi, offset {pdpt}",
    "mov eax, offset {pd}",
    "or eax, 3",
    "mov ecx, 4",
    "2:",
    "mov [edi], eax",
    "add eax, 4096",
    "add edi, 8",
    "loop 2b",
    // 2048 entries of 2 MiB: present, writable, page size (PS, bit 7).
    "mov edi, offset {pd}",
    "mov eax, 0x83",
    "mov ecx, 2048",
    "3:",
    "mov [edi], eax",
    "add eax, 0x200000",
    "add edi, 8",
    "loop 3b",
    // CR4.PAE, CR3, EFER.LME, then CR0.PG: IA-32e mode, compatibility submode.
    "mov eax, cr4",
    "or eax, 0x20",
    "mov cr4, eax",
    "mov eax, offset {pml4}",
    "mov cr3, eax",
    "mov ecx, 0xC0000080",
    "rdmsr",
    "or eax, 0x100",
    "wrmsr",
    "mov eax, cr0",
    "or eax, 0x80000001",
    "mov cr0, eax",
    // A 64-bit code segment: far return into it.
    "lgdt [boot_gdtr]",
    "push 0x08",
    "mov eax, offset long_mode_entry",
    "push eax",
    "retf",
    ".code64",
    "long_mode_entry:",
    "mov ax, 0x10",
    "mov ds, ax",
    "mov es, ax",
    "mov ss, ax",
    "xor eax, eax",
    "mov fs, ax",
    "mov gs, ax",
    "mov rsp, offset {stack} + {stack_size}",
    "mov edi, esi",
    "call {kmain}",
    "5:",
    "hlt",
    "jmp 5b",
    ".popsection",
    //
    ".pushsection .rodata.boot, \"a\"",
    ".balign 8",
    "6:",
    ".quad 0",
    ".quad 0x00af9a000000ffff", // 0x08: 64-bit code, present, DPL 0
    ".quad 0x00cf92000000ffff", // 0x10: data, present, writable
    "boot_gdtr:",
    ".word 23",
    ".long 6b",
    ".popsection",
    pml4 = sym BOOT_PML4,
    pdpt = sym BOOT_PDPT,
    pd = sym BOOT_PD,
    stack = sym BOOT_STACK,
    stack_size = const STACK_SIZE,
    kmain = sym crate::kmain,
);

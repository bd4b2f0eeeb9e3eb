/* Test-only shim, never shipped in the MSI: Wine 8 lacks bcryptprimitives.dll's ProcessPrng,
 * which Rust's std imports for randomness on Windows. This DLL provides it by forwarding to
 * RtlGenRandom (advapi32's SystemFunction036), so the Windows build can run under Wine. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

"""LLVM intrinsics the compiled callbacks need and numba does not offer: an address as a pointer, a fence,
a call through a C function pointer.

An address reaches compiled code as an int64 (a slot of a table); ``carray`` needs a pointer.
Ring data must become visible before the counter that publishes it, whatever the compiler or the CPU
would reorder: ``release_fence`` between the two.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def address(typingctx, value):
    """The int64 ``value`` (an address from a table) as a ``void *`` that ``carray`` accepts."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))
    return types.voidptr(types.int64), codegen


@intrinsic
def release_fence(typingctx):
    """Memory writes before it become visible before stores after it: ring data before the counters
    that publish it."""
    def codegen(context, builder, signature, args):
        builder.fence("release")
        return context.get_dummy_value()
    return types.none(), codegen


@intrinsic
def call_get_buffer(typingctx, function, port, frames):
    """``function(port, frames)`` for a C function ``void *f(void *, uint32_t)`` at the int64 address
    ``function``, its result as an int64 address: libjack's ``jack_port_get_buffer``, called from compiled
    code without the interpreter (its address is data, so the cfunc caches on disk)."""
    def codegen(context, builder, signature, args):
        pointer = ir.IntType(8).as_pointer()
        kind = ir.FunctionType(pointer, [pointer, ir.IntType(32)])
        target = builder.inttoptr(args[0], kind.as_pointer())
        result = builder.call(target, [builder.inttoptr(args[1], pointer), builder.trunc(args[2], ir.IntType(32))])
        return builder.ptrtoint(result, ir.IntType(64))
    return types.int64(types.int64, types.int64, types.int64), codegen


@intrinsic
def call_get_time(typingctx, function):
    """``function()`` for a C function ``uint64_t f(void)`` at the int64 address ``function`` (libjack's
    ``jack_get_time``: microseconds), as an int64."""
    def codegen(context, builder, signature, args):
        kind = ir.FunctionType(ir.IntType(64), [])
        return builder.call(builder.inttoptr(args[0], kind.as_pointer()), [])
    return types.int64(types.int64), codegen

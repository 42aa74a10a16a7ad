"""LLVM intrinsics the compiled callbacks need and numba does not offer: an address as a pointer, a fence.

An address reaches compiled code as an int64 (a slot of a table); ``carray`` needs a pointer.
Ring data must become visible before the counter that publishes it, whatever the compiler or the CPU
would reorder: ``release_fence`` between the two.
"""

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

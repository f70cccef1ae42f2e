using LoyaltyGrains.Contracts;
using LoyaltyGrains.Domain;
using LoyaltyGrains.Grains.Ledger;

namespace LoyaltyGrains.Grains.Members;

/// <summary>
/// The one translation of a member's outcomes into the contract's faults: a domain refusal, and what the ledger said —
/// out of reach (UNAVAILABLE, nothing recorded), unconfirmed (UNAVAILABLE, outcome unknown), a used message id
/// (ALREADY_EXISTS), another activation's write (ABORTED). Works on the ledger's own exception types
/// (<see cref="LedgerUnavailableException"/>, <see cref="LedgerConflictException"/>) and <see cref="Faults"/>; never on
/// a database driver's.
/// </summary>
public static class ContractFaults
{
    /// <summary>Said whenever the database could not be reached: nothing happened, and a retry is safe.</summary>
    public const string UnreachableMessage = "the database is unreachable; nothing was recorded, retry with the same transaction_id";

    public const string UnconfirmedMessage = "the database did not confirm in time; the outcome is unknown, retry with the same transaction_id";

    /// <summary>Whether a ledger read or write failed because the database is out of reach (or too slow to answer).</summary>
    public static bool IsUnreachable(Exception ex) => ex is LedgerUnavailableException || Faults.IsUnavailable(ex);

    public static LoyaltyUnavailableException Unreachable() => new(outcomeUnknown: false, UnreachableMessage);

    public static LoyaltyRejectedException Rejected(Rejection rejection) => new((RejectionCode)(int)rejection.Kind, rejection.Message);

    public static LoyaltyRejectedException ChangedConcurrently(string memberId) =>
        new(RejectionCode.Aborted, $"member '{memberId}' changed concurrently; retry the message");

    /// <summary>What the caller of a failed ledger write is told; anything the ledger did not classify passes unchanged.</summary>
    public static Exception OfWrite(Exception failure, string memberId) => failure switch
    {
        LedgerUnavailableException unavailable => new LoyaltyUnavailableException(outcomeUnknown: !unavailable.NotCommitted,
            unavailable.NotCommitted ? UnreachableMessage : UnconfirmedMessage),
        LedgerConflictException { Kind: LedgerConflictKind.MessageId } conflict => Rejected(MemberAccount.AlreadyUsed(conflict.MessageId)),
        LedgerConflictException => ChangedConcurrently(memberId),
        _ => failure,
    };

    /// <summary>A ledger read (or a load from snapshot and ledger): out of reach answers UNAVAILABLE, nothing recorded.</summary>
    public static async Task<T> ReadAsync<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (Exception ex) when (IsUnreachable(ex))
        {
            throw Unreachable();
        }
    }
}

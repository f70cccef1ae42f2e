namespace LoyaltyGrains.Contracts;

[GenerateSerializer, Immutable, Alias("lg.Authorize")]
public sealed record AuthorizeMessage(
    [property: Id(0)] string TransactionId,
    [property: Id(1)] string CardId,
    [property: Id(2)] long AmountMinor,
    [property: Id(3)] string Currency,
    [property: Id(4)] int Mcc,
    [property: Id(5)] string MerchantId,
    [property: Id(6)] DateTimeOffset OccurredAt);

/// <summary>
/// AuthorizationId empty = force post; Mcc −1, Currency "" and OccurredAt null = not given by the processor (the member
/// fills them: the authorization's currency, its own clock), so a retry's fingerprint never depends on the server.
/// </summary>
[GenerateSerializer, Immutable, Alias("lg.Capture")]
public sealed record CaptureMessage(
    [property: Id(0)] string TransactionId,
    [property: Id(1)] string AuthorizationId,
    [property: Id(2)] string CardId,
    [property: Id(3)] long AmountMinor,
    [property: Id(4)] DateTimeOffset? OccurredAt,
    [property: Id(5)] int Mcc,
    [property: Id(6)] string MerchantId,
    [property: Id(7)] string Currency);

/// <summary>OccurredAt null = not given (the member's clock is used).</summary>
[GenerateSerializer, Immutable, Alias("lg.Reverse")]
public sealed record ReverseMessage(
    [property: Id(0)] string TransactionId,
    [property: Id(1)] string AuthorizationId,
    [property: Id(2)] string CardId,
    [property: Id(3)] long AmountMinor,
    [property: Id(4)] DateTimeOffset? OccurredAt);

/// <summary>OccurredAt null = not given (the member's clock is used).</summary>
[GenerateSerializer, Immutable, Alias("lg.Refund")]
public sealed record RefundMessage(
    [property: Id(0)] string TransactionId,
    [property: Id(1)] string OriginalTransactionId,
    [property: Id(2)] string CardId,
    [property: Id(3)] long AmountMinor,
    [property: Id(4)] DateTimeOffset? OccurredAt);

[GenerateSerializer, Immutable, Alias("lg.BreakdownItem")]
public readonly record struct BreakdownItem(
    [property: Id(0)] string Rule,
    [property: Id(1)] long AmountMinor,
    [property: Id(2)] int RateBps,
    [property: Id(3)] string PartnerId);

[GenerateSerializer, Immutable, Alias("lg.PostingResult")]
public sealed record PostingResult(
    [property: Id(0)] string TransactionId,
    [property: Id(1)] bool Duplicate,
    [property: Id(2)] string MemberId,
    [property: Id(3)] string CardId,
    [property: Id(4)] long AccruedMinor,
    [property: Id(5)] long PendingAfterMinor,
    [property: Id(6)] long AvailableAfterMinor,
    [property: Id(7)] BreakdownItem[] Breakdown);

[GenerateSerializer, Immutable, Alias("lg.BalanceView")]
public sealed record BalanceView(
    [property: Id(0)] string MemberId,
    [property: Id(1)] long AvailableMinor,
    [property: Id(2)] long PendingMinor,
    [property: Id(3)] string Tier,
    [property: Id(4)] string[] ChosenCategories,
    [property: Id(5)] string Month,
    [property: Id(6)] long CategoryCapLeftMinor,
    [property: Id(7)] long ExpiringMinor,
    [property: Id(8)] DateTimeOffset? ExpiringAt,
    [property: Id(9)] bool Premium,
    [property: Id(10)] long Sequence);

[GenerateSerializer, Immutable, Alias("lg.MemberInfo")]
public sealed record MemberInfo(
    [property: Id(0)] string MemberId,
    [property: Id(1)] bool Premium,
    [property: Id(2)] string ReferredBy,
    [property: Id(3)] string Tier,
    [property: Id(4)] DateTimeOffset EnrolledAt);

[GenerateSerializer, Immutable, Alias("lg.CardInfo")]
public sealed record CardInfo(
    [property: Id(0)] string CardId,
    [property: Id(1)] string MemberId,
    [property: Id(2)] bool Blocked);

[GenerateSerializer, Immutable, Alias("lg.StatementLine")]
public sealed record StatementLine(
    [property: Id(0)] long Sequence,
    [property: Id(1)] string TransactionId,
    [property: Id(2)] string Kind,
    [property: Id(3)] string CardId,
    [property: Id(4)] long PurchaseAmountMinor,
    [property: Id(5)] long AccruedMinor,
    [property: Id(6)] long PendingDeltaMinor,
    [property: Id(7)] long AvailableDeltaMinor,
    [property: Id(8)] int Mcc,
    [property: Id(9)] string Category,
    [property: Id(10)] string MerchantId,
    [property: Id(11)] DateTimeOffset OccurredAt,
    [property: Id(12)] DateTimeOffset RecordedAt,
    [property: Id(13)] BreakdownItem[] Breakdown);

/// <summary>Entries newest first; NextBeforeSequence 0 = no more pages.</summary>
[GenerateSerializer, Immutable, Alias("lg.StatementPage")]
public sealed record StatementPage(
    [property: Id(0)] StatementLine[] Entries,
    [property: Id(1)] long NextBeforeSequence);

/// <summary>Why a grain refused a request; maps one-to-one onto a gRPC status code.</summary>
public enum RejectionCode
{
    InvalidArgument = 1,
    NotFound = 2,
    AlreadyExists = 3,
    FailedPrecondition = 4,
    PermissionDenied = 5,
    /// <summary>A conflicting concurrent writer or a lost lease: safe to retry the same message.</summary>
    Aborted = 6,
    /// <summary>A per-member bound is reached (e.g. reversals waiting for their authorization).</summary>
    ResourceExhausted = 7,
}

/// <summary>
/// The engine could not finish in time because a dependency (the database) is unreachable or slow, or the caller's
/// deadline passed. The outcome may be unknown: the processor retries with the same transaction id, which is always
/// safe (gRPC UNAVAILABLE).
/// </summary>
[GenerateSerializer, Alias("lg.UnavailableException")]
public sealed class LoyaltyUnavailableException : Exception
{
    public LoyaltyUnavailableException()
    {
    }

    public LoyaltyUnavailableException(string message) : base(message)
    {
    }

    public LoyaltyUnavailableException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public LoyaltyUnavailableException(bool outcomeUnknown, string message) : base(message) => OutcomeUnknown = outcomeUnknown;

    /// <summary>True when the change may still have been recorded; false when it is known not to have been.</summary>
    [Id(0)]
    public bool OutcomeUnknown { get; init; }
}

/// <summary>An expected refusal (bad input, unknown id, wrong state). Nothing changed when it is thrown.</summary>
[GenerateSerializer, Alias("lg.RejectedException")]
public sealed class LoyaltyRejectedException : Exception
{
    public LoyaltyRejectedException()
    {
    }

    public LoyaltyRejectedException(string message) : base(message)
    {
    }

    public LoyaltyRejectedException(string message, Exception innerException) : base(message, innerException)
    {
    }

    public LoyaltyRejectedException(RejectionCode code, string message) : base(message) => Code = code;

    [Id(0)]
    public RejectionCode Code { get; init; }
}

/// <summary>One processor posting of a bulk call to a member (<see cref="IMemberGrain.Post"/>): exactly one field is set.</summary>
[GenerateSerializer, Immutable, Alias("lg.PostingItem")]
public sealed record PostingItem(
    [property: Id(0)] AuthorizeMessage? Authorize = null,
    [property: Id(1)] CaptureMessage? Capture = null,
    [property: Id(2)] ReverseMessage? Reverse = null,
    [property: Id(3)] RefundMessage? Refund = null)
{
    public string TransactionId => Authorize?.TransactionId ?? Capture?.TransactionId ?? Reverse?.TransactionId ?? Refund?.TransactionId ?? "";

    public string CardId => Authorize?.CardId ?? Capture?.CardId ?? Reverse?.CardId ?? Refund?.CardId ?? "";
}

/// <summary>What one item of a bulk call came to: its result, or the error a unary call would have thrown.</summary>
[GenerateSerializer, Immutable, Alias("lg.PostingItemResult")]
public sealed record PostingItemResult([property: Id(0)] PostingResult? Result, [property: Id(1)] Exception? Error);

/// <summary>
/// An authorization reached a member straight from a gateway, but this activation of the member has not been told
/// about the card by its card grain (the only owner of the card's facts): nothing was decided or recorded; the
/// gateway sends the message through the card grain, which hands the member what it knows of the card.
/// </summary>
[GenerateSerializer, Alias("lg.CardRouteRequiredException")]
public sealed class CardRouteRequiredException : Exception
{
    public CardRouteRequiredException()
    {
    }

    public CardRouteRequiredException(string message) : base(message)
    {
    }

    public CardRouteRequiredException(string message, Exception innerException) : base(message, innerException)
    {
    }
}

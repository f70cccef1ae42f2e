using System.Collections.Concurrent;
using Grpc.Core;
using LoyaltyGrains.Gateway.V1;

namespace LoyaltyGrains.LoadTests;

/// <summary>
/// What every member's balance must be, from the replies the tool received. The engine's rules: an authorization
/// adds its accrual to pending; a capture removes what is still pending for that authorization and adds its own
/// accrual to available; a reversal adds its (negative) accrual to pending; a refund adds its (negative) accrual to
/// available. A DUPLICATE must repeat the original reply's figures exactly. A posting whose outcome is unknown
/// (deadline, connection lost) is remembered and resolved after the run by sending it again: the engine's
/// idempotency answers ACCEPTED (it never landed) or DUPLICATE with the original figures — either way the reply
/// then says what it did.
/// </summary>
public sealed class Expectations(int members)
{
    private readonly MemberExpectation[] _members = [.. Enumerable.Range(0, members).Select(_ => new MemberExpectation())];
    private readonly ConcurrentQueue<string> _problems = new();
    private readonly ConcurrentQueue<UnknownPosting> _unknown = new();
    private long _duplicatesChecked;
    private long _problemCount;

    public long DuplicatesChecked => Interlocked.Read(ref _duplicatesChecked);
    public long ProblemCount => Interlocked.Read(ref _problemCount);
    public IReadOnlyCollection<string> Problems => _problems;
    public int UnknownCount => _unknown.Count;

    /// <summary>Applies a posting reply to the member's expected figures. Resolution passes <paramref name="resolving"/> so a DUPLICATE counts too.</summary>
    public void Apply(int member, PostingRequest.KindOneofCase kind, string authorizationId, PostingReply reply, bool resolving = false)
    {
        if (reply.Status != PostingStatus.Accepted && !(resolving && reply.Status == PostingStatus.Duplicate)) return;
        var m = _members[member];
        lock (m)
        {
            switch (kind)
            {
                case PostingRequest.KindOneofCase.Authorize:
                    m.PendingMinor += reply.AccruedMinor;
                    m.PendingByAuthorization[authorizationId] = reply.AccruedMinor;
                    break;
                case PostingRequest.KindOneofCase.Capture:
                    if (m.PendingByAuthorization.Remove(authorizationId, out var pending)) m.PendingMinor -= pending;
                    m.AvailableMinor += reply.AccruedMinor;
                    break;
                case PostingRequest.KindOneofCase.Reverse:
                    m.PendingMinor += reply.AccruedMinor;
                    if (m.PendingByAuthorization.TryGetValue(authorizationId, out var left)) m.PendingByAuthorization[authorizationId] = left + reply.AccruedMinor;
                    break;
                case PostingRequest.KindOneofCase.Refund:
                    m.AvailableMinor += reply.AccruedMinor;
                    break;
            }
        }
    }

    /// <summary>A retry's reply must be DUPLICATE with the original's figures.</summary>
    public void Retried(PostingReply original, PostingReply again)
    {
        Interlocked.Increment(ref _duplicatesChecked);
        if (again.Status != PostingStatus.Duplicate || again.AccruedMinor != original.AccruedMinor || again.PendingMinor != original.PendingMinor
            || again.AvailableMinor != original.AvailableMinor || again.MemberId != original.MemberId)
        {
            Problem($"retry of {original.TransactionId}: expected DUPLICATE accrued/pending/available {original.AccruedMinor}/{original.PendingMinor}/{original.AvailableMinor}, " +
                $"got {again.Status} {again.AccruedMinor}/{again.PendingMinor}/{again.AvailableMinor}");
        }
    }

    public void Unknown(int member, PostingRequest request) => _unknown.Enqueue(new UnknownPosting(member, request));

    public void Problem(string text)
    {
        Interlocked.Increment(ref _problemCount);
        if (_problems.Count < 1_000) _problems.Enqueue(text);
    }

    public (long AvailableMinor, long PendingMinor) Expected(int member)
    {
        var m = _members[member];
        lock (m) return (m.AvailableMinor, m.PendingMinor);
    }

    /// <summary>Sends every unknown-outcome posting again until the engine answers, and applies the answers.</summary>
    public async Task<(int Resolved, int Unresolved)> ResolveUnknownAsync(Engine engine, Action<string> progress, CancellationToken cancellation)
    {
        var unknown = new List<UnknownPosting>();
        while (_unknown.TryDequeue(out var u)) unknown.Add(u);
        if (unknown.Count == 0) return (0, 0);
        progress($"resolving {unknown.Count:N0} postings with unknown outcome by sending them again (idempotent)");
        var unresolved = 0;
        await Parallel.ForEachAsync(unknown, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellation }, async (u, ct) =>
        {
            try
            {
                var reply = await Engine.WithRetries(() => Send(engine, u.Request, ct), ct, attempts: 8);
                Apply(u.Member, u.Request.KindCase, AuthorizationOf(u.Request), reply, resolving: true);
            }
            catch (RpcException ex) when (!Engine.OutcomeUnknown(ex.StatusCode))
            {
                // A definite rejection now means the first attempt was not applied either (the engine answers a
                // retry of an applied message with DUPLICATE): nothing to add.
            }
            catch (RpcException ex)
            {
                Interlocked.Increment(ref unresolved);
                Problem($"{u.Request.KindCase} {TransactionOf(u.Request)}: outcome still unknown after retries ({Arrival.StatusName(ex.StatusCode)})");
            }
        });
        return (unknown.Count - unresolved, unresolved);
    }

    public static Task<PostingReply> Send(Engine engine, PostingRequest request, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + engine.Options.RequestTimeout;
        var processing = engine.Processing(0);
        return request.KindCase switch
        {
            PostingRequest.KindOneofCase.Authorize => processing.AuthorizeAsync(request.Authorize, deadline: deadline, cancellationToken: ct).ResponseAsync,
            PostingRequest.KindOneofCase.Capture => processing.CaptureAsync(request.Capture, deadline: deadline, cancellationToken: ct).ResponseAsync,
            PostingRequest.KindOneofCase.Reverse => processing.ReverseAsync(request.Reverse, deadline: deadline, cancellationToken: ct).ResponseAsync,
            PostingRequest.KindOneofCase.Refund => processing.RefundAsync(request.Refund, deadline: deadline, cancellationToken: ct).ResponseAsync,
            _ => throw new ArgumentException("empty posting request", nameof(request)),
        };
    }

    /// <summary>The authorization a posting refers to (an authorization refers to itself).</summary>
    public static string AuthorizationOf(PostingRequest request) => request.KindCase switch
    {
        PostingRequest.KindOneofCase.Authorize => request.Authorize.TransactionId,
        PostingRequest.KindOneofCase.Capture => request.Capture.AuthorizationId,
        PostingRequest.KindOneofCase.Reverse => request.Reverse.AuthorizationId,
        PostingRequest.KindOneofCase.Refund => request.Refund.OriginalTransactionId,
        _ => "",
    };

    public static string TransactionOf(PostingRequest request) => request.KindCase switch
    {
        PostingRequest.KindOneofCase.Authorize => request.Authorize.TransactionId,
        PostingRequest.KindOneofCase.Capture => request.Capture.TransactionId,
        PostingRequest.KindOneofCase.Reverse => request.Reverse.TransactionId,
        PostingRequest.KindOneofCase.Refund => request.Refund.TransactionId,
        _ => "",
    };

    private sealed record UnknownPosting(int Member, PostingRequest Request);

    private sealed class MemberExpectation
    {
        public long AvailableMinor;
        public long PendingMinor;
        public readonly Dictionary<string, long> PendingByAuthorization = new(StringComparer.Ordinal);
    }
}

using System.Net.Http.Headers;
using System.Text;

namespace TrainingService.Server.Tests.Infrastructure;

/// <summary>One Server-Sent Event.</summary>
public sealed record SseEvent(string? Id, string Event, string Data);

/// <summary>A minimal SSE reader over HttpClient (text/event-stream framing: fields, blank line between events).</summary>
public static class SseClient
{
    /// <summary>
    /// Reads events until <paramref name="stop"/> says so, the stream ends, or <paramref name="timeout"/> passes (then it
    /// returns what arrived; callers assert on it). Comment lines (heartbeats) are counted.
    /// </summary>
    public static async Task<(List<SseEvent> Events, int Heartbeats)> ReadAsync(HttpClient client, string url, string? lastEventId,
        Func<SseEvent, bool> stop, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
        response.EnsureSuccessStatusCode();
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token), Encoding.UTF8);
        var events = new List<SseEvent>();
        int heartbeats = 0;
        string? id = null, name = null;
        var data = new StringBuilder();
        while (await ReadLineOrNullAsync(reader, cancel.Token) is { } line)
        {
            if (line.Length == 0)
            {
                if (name is not null || data.Length > 0)
                {
                    var e = new SseEvent(id, name ?? "message", data.ToString());
                    events.Add(e);
                    if (stop(e))
                    {
                        break;
                    }
                }
                (id, name) = (null, null);
                data.Clear();
            }
            else if (line.StartsWith(':'))
            {
                heartbeats++;
            }
            else if (line.StartsWith("id: "))
            {
                id = line[4..];
            }
            else if (line.StartsWith("event: "))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: "))
            {
                data.Append(line[6..]);
            }
        }
        return (events, heartbeats);
    }

    private static async Task<string?> ReadLineOrNullAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadLineAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }
}

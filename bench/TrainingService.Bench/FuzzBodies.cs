using System.Text;
using System.Text.Json.Nodes;

namespace TrainingService.Bench;

/// <summary>
/// Request bodies for the fuzz: a valid body for the route, then one mutation chosen by the seeded generator. Text
/// that .NET strings cannot hold (lone surrogates, invalid UTF-8) goes in as a placeholder replaced in the bytes.
/// </summary>
internal static class FuzzBodies
{
    private const string Placeholder = "@@TEXT@@";

    private static readonly JsonNode?[] WrongValues = [null, true, 0, -1, 1.5, "x", new JsonArray(), new JsonObject(), "", "00:00:00"];
    private static readonly string[] HugeNumbers = ["1e400", "-1e400", "1e308", "1e39", "-1e39", "99999999999999999999", "\"Infinity\"", "\"NaN\"", "\"-Infinity\"", "4.9e-324"];
    private static readonly string[] UnknownNames = ["learning_rate", "hidden_layers", "min_delta", "epoch", "zzz", "Target", "weight_decay", "from_logits", "row"];
    private static readonly string[] BadText = ["\\u0000", "a\\u0000b", "\\ud800", "\\udc00", "\\ud800\\ud800", "RAW-INVALID-UTF8"];

    public static (byte[] Body, string ContentType) For(string template, string datasetId, Random random)
    {
        if (template == "/api/datasets")
        {
            return Csv(random);
        }
        JsonNode body = template switch
        {
            "/api/jobs" => Spec(datasetId, random),
            "/api/jobs/{id}/predict" => JsonNode.Parse("""{"rows": [{"x1": 0.5, "x2": -0.5}, {"x1": 1, "x2": null}]}""")!,
            "/api/losses/evaluate" => JsonNode.Parse("""{"loss": {"terms": [{"name": "huber", "weight": 1, "delta": 1}, {"name": "l1", "weight": 0.5}]}, "predictions": [0.2, -1.5, 3], "targets": [0, 1, 1], "reduction": "mean"}""")!,
            _ => new JsonObject(),
        };
        return Mutate(body, random);
    }

    private static JsonNode Spec(string datasetId, Random random)
    {
        var spec = JsonNode.Parse($$"""
            {"datasetId": "{{datasetId}}", "target": "y", "features": ["x1", "x2"], "loss": {"name": "huber", "delta": 1}, "epochs": 1,
             "batchSize": 16, "seed": 3, "optimizer": {"name": "sgd", "learningRate": 0.01, "momentum": 0.9},
             "schedule": {"name": "step", "stepSize": 2, "gamma": 0.5}, "validation": {"fraction": 0.2},
             "earlyStopping": {"monitor": "valLoss", "patience": 2, "minDelta": 0}, "regularization": {"l2": 0.001}, "missing": "impute"}
            """)!;
        if (random.Next(3) == 0)
        {
            spec["model"] = JsonNode.Parse("""{"type": "mlp", "hiddenLayers": [4], "activation": "tanh", "dropout": 0.1}""");
            spec["target"] = "label";
            spec["loss"] = "cross_entropy";
            spec["classWeights"] = JsonNode.Parse("""{"up": 2, "down": 1}""");
        }
        return spec;
    }

    private static (byte[] Body, string ContentType) Mutate(JsonNode body, Random random)
    {
        var slots = Slots(body).ToList();
        var (parent, key) = slots.Count > 0 ? slots[random.Next(slots.Count)] : (body, (object)"x");
        switch (random.Next(11))
        {
            case 0:
                return (Noise(random), "application/json");
            case 1:
                return (Deep(body, parent, key, random), "application/json");
            case 2:
                Set(parent, key, Placeholder);
                return (Replace(body, $"\"{Placeholder}\"", HugeNumbers[random.Next(HugeNumbers.Length)]), "application/json");
            case 3:
                Set(parent, key, WrongValues[random.Next(WrongValues.Length)]?.DeepClone());
                return (Encoding.UTF8.GetBytes(body.ToJsonString()), "application/json");
            case 4:
                Set(parent, key, $"x{Placeholder}");
                return (Replace(body, Placeholder, BadText[random.Next(BadText.Length)]), "application/json");
            case 5:
                (parent is JsonObject o ? o : body.AsObject())[UnknownNames[random.Next(UnknownNames.Length)]] = 1;
                return (Encoding.UTF8.GetBytes(body.ToJsonString()), "application/json");
            case 6:
                return (Encoding.UTF8.GetBytes(body.ToJsonString()), random.Next(2) == 0 ? "text/plain" : "application/xml");
            case 7:
                string text = body.ToJsonString();
                return (Encoding.UTF8.GetBytes(text[..random.Next(text.Length)]), "application/json");
            case 8:
                return ([], random.Next(2) == 0 ? "application/json" : "");
            default:
                return (Encoding.UTF8.GetBytes(body.ToJsonString()), "application/json");
        }
    }

    /// <summary>Every place a value sits: (object, name) and (array, index).</summary>
    private static IEnumerable<(JsonNode Parent, object Key)> Slots(JsonNode node)
    {
        if (node is JsonObject o)
        {
            foreach (var (name, child) in o.ToList())
            {
                yield return (o, name);
                foreach (var slot in child is null ? [] : Slots(child))
                {
                    yield return slot;
                }
            }
        }
        else if (node is JsonArray a)
        {
            for (int i = 0; i < a.Count; i++)
            {
                yield return (a, i);
                foreach (var slot in a[i] is { } child ? Slots(child) : [])
                {
                    yield return slot;
                }
            }
        }
    }

    private static void Set(JsonNode parent, object key, JsonNode? value)
    {
        if (parent is JsonObject o)
        {
            o[(string)key] = value;
        }
        else if (parent is JsonArray a)
        {
            a[(int)key] = value;
        }
    }

    private static byte[] Deep(JsonNode body, JsonNode parent, object key, Random random)
    {
        int depth = random.Next(60, 20_000);
        bool arrays = random.Next(2) == 0;
        string open = arrays ? "[" : "{\"a\":", close = arrays ? "]" : "}";
        string nested = string.Concat(Enumerable.Repeat(open, depth)) + "1" + string.Concat(Enumerable.Repeat(close, depth));
        if (random.Next(3) == 0)
        {
            return Encoding.UTF8.GetBytes(nested);
        }
        Set(parent, key, Placeholder);
        return Replace(body, $"\"{Placeholder}\"", nested);
    }

    private static byte[] Replace(JsonNode body, string placeholder, string replacement)
    {
        string text = body.ToJsonString();
        if (replacement != "RAW-INVALID-UTF8")
        {
            return Encoding.UTF8.GetBytes(text.Replace(placeholder, replacement));
        }
        var bytes = Encoding.UTF8.GetBytes(text.Replace(placeholder, "\u0001\u0002"));
        int at = Array.IndexOf(bytes, (byte)1);
        (bytes[at], bytes[at + 1]) = (0xC3, 0x28); // a lead byte, then a byte that cannot continue it
        return bytes;
    }

    private static byte[] Noise(Random random)
    {
        var bytes = new byte[random.Next(0, 4096)];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>CSV uploads: valid, with NUL or invalid UTF-8 in names and cells, ragged, binary, or huge names.</summary>
    private static (byte[] Body, string ContentType) Csv(Random random)
    {
        string name = $"c{random.Next(1000)}";
        string csv = random.Next(8) switch
        {
            0 => $"a\0b,y\n1,2\n3,4\n",
            1 => $"{new string('n', random.Next(1, 200_000))},y\n1,2\n",
            2 => "a,b\n1\n1,2,3\n",
            3 => "a,a\n1,2\n",
            4 => $"x,{name}\n1,\0\n2,3\n",
            5 => "\"unterminated,y\n1,2\n",
            6 => "",
            _ => $"x,{name}\n{random.Next(100)},{random.Next(100)}\n{random.Next(100)},{random.Next(100)}\n",
        };
        var bytes = Encoding.UTF8.GetBytes(csv);
        if (random.Next(6) == 0)
        {
            bytes = [.. bytes, 0xC3, 0x28, (byte)'\n'];
        }
        return random.Next(10) == 0 ? (Noise(random), "text/csv") : (bytes, random.Next(8) == 0 ? "application/json" : "text/csv");
    }
}

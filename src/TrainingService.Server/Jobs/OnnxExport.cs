using System.Globalization;
using Google.Protobuf;
using Onnx;
using TrainingService.Compute.Training;
using TrainingService.Server.Preprocessing;
using DataType = Onnx.TensorProto.Types.DataType;

namespace TrainingService.Server.Jobs;

/// <summary>
/// Writes a stored model as one ONNX graph that answers as <c>/predict</c> does, with no service in sight: the fitted
/// preprocessing (imputation, standardization, one-hot), the dense layers (no dropout at inference) and the output
/// transform. Inputs: one tensor of shape [N, 1] per feature column, named after the column: float for numeric and
/// boolean columns (NaN is missing), string for categorical ones ("" or NA, N/A, NaN, null in any case is missing; a
/// category not seen in training encodes as all zeros). Outputs are named after <c>/predict</c>'s fields: values;
/// label with probability (binary, multiclass), probabilities (multiclass, distribution), score or scores (margin models);
/// an output whose name a feature column already takes gets "_output" appended.
/// Standard operators of opset 17, plus ai.onnx.ml's LabelEncoder for the string lookups.
/// </summary>
public static class OnnxExport
{
    public const int Opset = 17;
    public const int MlOpset = 3;
    /// <summary>Bumped when the graph for the same model changes, so the export's ETag changes with it.</summary>
    public const int Version = 1;

    /// <summary>
    /// The spellings /predict reads as missing (CellValues.IsMissing, untrimmed), in every case, for LabelEncoder's exact
    /// lookup. Not StringNormalizer to lower-case first: on Linux ONNX Runtime constructs its locale (en_US.UTF-8), and a
    /// host without that locale cannot load the graph.
    /// </summary>
    private static readonly string[] MissingSpellings = new[] { "", "na", "n/a", "nan", "null" }.SelectMany(CaseVariants).ToArray();

    /// <summary>The serialized ONNX model.</summary>
    public static byte[] Write(ModelDocument model)
    {
        var graph = new Graph(model);
        var features = model.Features.Select(graph.Encode).ToList();
        string x = features.Count == 1 ? features[0] : graph.Node("Concat", features, Int("axis", 1));
        var layers = model.Layers;
        for (int l = 0; l < layers.Count; l++)
        {
            var weights = graph.Constant(layers[l].Weights.SelectMany(row => row).ToArray(), layers[l].Inputs, layers[l].Outputs);
            var bias = graph.Constant(layers[l].Bias, layers[l].Outputs);
            x = graph.Activation(layers[l].Activation, graph.Node("Gemm", [x, weights, bias]));
        }
        graph.Outputs(model, x);
        return Package(model, graph.Proto).ToByteArray();
    }

    private static ModelProto Package(ModelDocument model, GraphProto graph)
    {
        var proto = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "TrainingService",
            ProducerVersion = Version.ToString(CultureInfo.InvariantCulture),
            DocString = $"Job {model.JobId}: {model.Task}, trained {model.EpochsTrained} epochs; inputs are the raw feature columns.",
            Graph = graph,
        };
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        proto.OpsetImport.Add(new OperatorSetIdProto { Domain = "ai.onnx.ml", Version = MlOpset });
        proto.MetadataProps.Add(new StringStringEntryProto { Key = "job_id", Value = model.JobId.ToString() });
        proto.MetadataProps.Add(new StringStringEntryProto { Key = "task", Value = model.Task });
        if (model.Labels is { } labels)
        {
            proto.MetadataProps.Add(new StringStringEntryProto { Key = "labels", Value = string.Join("\n", labels) });
        }
        return proto;
    }

    private static IEnumerable<string> CaseVariants(string word)
    {
        IEnumerable<string> variants = [""];
        foreach (char c in word)
        {
            var cases = char.IsLetter(c) ? new[] { char.ToLowerInvariant(c), char.ToUpperInvariant(c) } : [c];
            variants = variants.SelectMany(v => cases.Select(k => v + k)).ToList();
        }
        return variants;
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static AttributeProto Strings(string name, IEnumerable<string> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Strings };
        attribute.Strings.AddRange(values.Select(ByteString.CopyFromUtf8));
        return attribute;
    }

    /// <summary>The graph under construction: nodes, initializers, inputs, and names that cannot meet a column's.</summary>
    private sealed class Graph
    {
        private readonly string _prefix;
        private readonly HashSet<string> _columns;
        private int _next;

        public Graph(ModelDocument model)
        {
            _columns = model.Features.Select(f => f.Column).ToHashSet(StringComparer.Ordinal);
            // Internal names start with a prefix no column starts with, so a column called "Gemm_0" cannot collide.
            _prefix = "ts:";
            while (model.Features.Any(f => f.Column.StartsWith(_prefix, StringComparison.Ordinal)))
            {
                _prefix += ":";
            }
            Proto = new GraphProto { Name = $"job_{model.JobId:N}" };
        }

        public GraphProto Proto { get; }

        public string Node(string op, IReadOnlyList<string> inputs, params AttributeProto[] attributes) =>
            NodeIn("", op, inputs, attributes);

        public string NodeIn(string domain, string op, IReadOnlyList<string> inputs, params AttributeProto[] attributes)
        {
            string output = $"{_prefix}{op}_{_next++}";
            var node = new NodeProto { OpType = op, Domain = domain, Name = output };
            node.Input.AddRange(inputs);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            Proto.Node.Add(node);
            return output;
        }

        public string Constant(float[] values, params long[] dims) => Initializer(DataType.Float, dims, t => t.FloatData.AddRange(values));

        public string Constant(double[] values, params long[] dims) => Initializer(DataType.Double, dims, t => t.DoubleData.AddRange(values));

        public string Constant(long[] values, params long[] dims) => Initializer(DataType.Int64, dims, t => t.Int64Data.AddRange(values));

        public string Constant(IReadOnlyList<string> values, params long[] dims) =>
            Initializer(DataType.String, dims, t => t.StringData.AddRange(values.Select(ByteString.CopyFromUtf8)));

        private string Initializer(DataType type, long[] dims, Action<TensorProto> fill)
        {
            var tensor = new TensorProto { Name = $"{_prefix}const_{_next++}", DataType = (int)type };
            tensor.Dims.AddRange(dims);
            fill(tensor);
            Proto.Initializer.Add(tensor);
            return tensor.Name;
        }

        public void Input(string name, DataType type, long width) => Proto.Input.Add(Value(name, type, width));

        public void Output(string name, DataType type, long width) => Proto.Output.Add(Value(name, type, width));

        private static ValueInfoProto Value(string name, DataType type, long width)
        {
            var shape = new TensorShapeProto();
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
            };
        }

        /// <summary>One column's model inputs, [N, width] float, as FeaturePipeline.Encode writes them.</summary>
        public string Encode(FeatureEncoder encoder)
        {
            if (encoder.Categories is { } categories)
            {
                Input(encoder.Column, DataType.String, 1);
                return OneHot(encoder.Column, categories, encoder.ImputeCategory);
            }
            Input(encoder.Column, DataType.Float, 1);
            // In double, as /predict computes (value − mean) / scale before rounding to float.
            string value = Node("Cast", [encoder.Column], Int("to", (long)DataType.Double));
            string filled = Node("Where", [Node("IsNaN", [value]), Constant([encoder.Impute], 1), value]);
            string scaled = Node("Div", [Node("Sub", [filled, Constant([encoder.Mean], 1)]), Constant([encoder.Scale], 1)]);
            return Node("Cast", [scaled], Int("to", (long)DataType.Float));
        }

        /// <summary>Category → index (missing → the imputed category, unseen → −1), then index == 0…K−1 as floats.</summary>
        private string OneHot(string column, IReadOnlyList<string> categories, int impute)
        {
            var missing = MissingSpellings.Where(s => !categories.Contains(s)).ToList();
            var keys = categories.Concat(missing).ToList();
            var values = Enumerable.Range(0, categories.Count).Select(i => (long)i).Concat(missing.Select(_ => (long)impute)).ToArray();
            string code = NodeIn("ai.onnx.ml", "LabelEncoder", [column], Strings("keys_strings", keys), Ints("values_int64s", values),
                Int("default_int64", -1));
            var range = Enumerable.Range(0, categories.Count).Select(i => (long)i).ToArray();
            string hot = Node("Equal", [code, Constant(range, range.Length)]);
            return Node("Cast", [hot], Int("to", (long)DataType.Float));
        }

        public string Activation(string activation, string z) => activation switch
        {
            "identity" => z,
            "relu" => Node("Relu", [z]),
            "tanh" => Node("Tanh", [z]),
            "sigmoid" => Node("Sigmoid", [z]),
            // z·Φ(z) = z · ½(1 + erf(z/√2)); opset 17 has no Gelu operator.
            "gelu" => Node("Mul", [z, Node("Mul", [Constant([0.5f], 1),
                Node("Add", [Constant([1f], 1), Node("Erf", [Node("Mul", [z, Constant([0.70710678118654752f], 1)])])])])]),
            _ => throw new InvalidOperationException($"No ONNX form for activation '{activation}'."),
        };

        /// <summary>The outputs /predict reports for the model's task, under its field names.</summary>
        public void Outputs(ModelDocument model, string raw)
        {
            int k = model.Layers[^1].Outputs;
            switch (model.Task)
            {
                case "binary" when model.Transform == OutputTransform.Identity:
                    Name(raw, "score", DataType.Float, 1);
                    Name(LabelOf(model, Node("Cast", [Node("Greater", [raw, Constant([0f], 1)])], Int("to", (long)DataType.Int64))), "label", DataType.String, 1);
                    break;
                case "binary":
                    string probability = Node("Sigmoid", [raw]);
                    Name(probability, "probability", DataType.Float, 1);
                    // /predict compares σ in double: in float, σ(z) rounds to 0.5 for 0 < z < 6e-8 and the label would flip.
                    string precise = Node("Sigmoid", [Node("Cast", [raw], Int("to", (long)DataType.Double))]);
                    Name(LabelOf(model, Node("Cast", [Node("Greater", [precise, Constant([0.5], 1)])], Int("to", (long)DataType.Int64))),
                        "label", DataType.String, 1);
                    break;
                case "multiclass":
                    // The arg max of the logits: softmax keeps their order, and /predict takes the first of equal maxima too.
                    Name(LabelOf(model, Node("ArgMax", [raw], Int("axis", 1), Int("keepdims", 1))), "label", DataType.String, 1);
                    if (model.Transform == OutputTransform.Identity)
                    {
                        Name(raw, "scores", DataType.Float, k);
                        break;
                    }
                    string probabilities = Node("Softmax", [raw], Int("axis", 1));
                    Name(probabilities, "probabilities", DataType.Float, k);
                    Name(Node("ReduceMax", [probabilities], Ints("axes", 1), Int("keepdims", 1)), "probability", DataType.Float, 1);
                    break;
                default:
                    string values = model.Transform switch
                    {
                        OutputTransform.Exp => Node("Exp", [raw]),
                        OutputTransform.Sigmoid => Node("Sigmoid", [raw]),
                        OutputTransform.Softmax => Node("Softmax", [raw], Int("axis", 1)),
                        _ => raw,
                    };
                    Name(values, model.Task == "distribution" ? "probabilities" : "values", DataType.Float, k);
                    break;
            }
        }

        private string LabelOf(ModelDocument model, string index) =>
            Node("Gather", [Constant(model.Labels!, model.Labels!.Count), index], Int("axis", 0));

        /// <summary>
        /// Exposes <paramref name="value"/> as graph output <paramref name="field"/>, or <c>field_output</c> when a feature
        /// column (a graph input) already has that name.
        /// </summary>
        private void Name(string value, string field, DataType type, long width)
        {
            string name = field;
            while (_columns.Contains(name))
            {
                name += "_output";
            }
            Node("Identity", [value]);
            Proto.Node[^1].Output[0] = name;
            Output(name, type, width);
        }
    }
}

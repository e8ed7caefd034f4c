using System.Runtime.CompilerServices;
using ILGPU;
using static TrainingService.Compute.Devices.ViewPointers;

namespace TrainingService.Compute.Models;

/// <summary>Shape and epilogue settings of one dense-layer launch.</summary>
public struct DenseArgs
{
    /// <summary>Rows in the batch.</summary>
    public int Rows;
    /// <summary>Layer input width.</summary>
    public int In;
    /// <summary>Layer output width.</summary>
    public int Out;
    /// <summary>Activation of this layer's output (forward) or of the previous layer (backward to inputs).</summary>
    public int Activation;
    /// <summary>Dropout probability applied after the activation; 0 disables (and always at evaluation).</summary>
    public float DropoutRate;
    /// <summary>Seed of this batch and layer's dropout mask (the same value in forward and backward).</summary>
    public uint DropoutSeed;
    /// <summary>Consecutive tiles a thread takes per pass (<see cref="DenseKernels.TilesPerPass"/>); 0 counts as 1.
    /// Backward: those of the weight gradient.</summary>
    public int TilesPerPass;
    /// <summary>Backward: consecutive tiles of the input gradient a thread takes per pass; 0 counts as 1.</summary>
    public int InputTilesPerPass;
}

/// <summary>
/// Dense-layer kernels, register-tiled: each logical thread owns a 4 × 4 block of outputs and keeps its sixteen
/// accumulators in registers while it walks the shared dimension. Bias, activation and dropout are fused into the
/// epilogues, so a layer costs one launch forward and one backward (weights, bias and input gradient together).
/// </summary>
/// <remarks>
/// <para>Layout: activations are row-major [rows × width]; a layer's parameters are the block [W (in × out); b (out)].</para>
/// <para>Memory is read and written through raw pointers taken once per launch from each view (<see cref="Address"/>).
/// On ILGPU's CPU accelerator a kernel is the C# method itself, and every <c>ArrayView</c> index runs ILGPU's
/// <c>Trace.Assert</c> range check and buffer-type check and loads the buffer's base address (ILGPU is built with TRACE,
/// so this does not depend on the context's debug or assertion settings); a pointer index is one load. ILGPU's PTX
/// backend compiles the same pointer arithmetic to plain global loads and stores.</para>
/// <para>Whole tiles run a loop with constant offsets, inlined into the kernel's tile loop; partial tiles at the edges
/// and the per-element epilogues (activation, its derivative, dropout) are methods of their own, never inlined: with
/// them in the same method as the loop the kernel measured ~1.5× slower on the CPU (the JIT allocates registers per
/// method, and sixteen accumulators leave none to spare).</para>
/// <para>Tiles are enumerated row-major; on the CPU each thread takes one contiguous run of them
/// (<see cref="DenseArgs.TilesPerPass"/>), so no output cache line is written by two cores; on a GPU neighbouring
/// threads take neighbouring tiles. Every output is summed by one thread in a fixed order, so results do not depend
/// on the split and are bit-identical run to run.</para>
/// </remarks>
public static class DenseKernels
{
    private const int Tile = 4;

    /// <summary>Output tiles of a [rows × columns] product: of <see cref="Forward"/> (rows × out) and of the input gradient (rows × in).</summary>
    public static long Tiles(int rows, int columns) => (long)((rows + Tile - 1) / Tile) * ((columns + Tile - 1) / Tile);

    /// <summary>Tiles of the weight and bias gradient of an in × out layer.</summary>
    public static long WeightTiles(int inputs, int outputs) => Tiles(inputs, outputs) + (outputs + Tile - 1) / Tile;

    /// <summary>Tiles a thread takes per pass: one contiguous run per thread on the CPU, one tile at a time on a GPU.</summary>
    public static int TilesPerPass(bool isCpu, long tiles, int threads) =>
        isCpu ? (int)Math.Max(1, (tiles + threads - 1) / threads) : 1;

    /// <summary>Z = X·W + b; preActivation = Z (unless empty); output = dropout(f(Z)).</summary>
    public static unsafe void Forward(ArrayView<float> input, ArrayView<float> parameters, ArrayView<float> preActivation,
        ArrayView<float> output, DenseArgs args)
    {
        float* x = Address(input), w = Address(parameters), z = Address(preActivation), o = Address(output);
        int tileCols = (args.Out + Tile - 1) / Tile;
        int tiles = ((args.Rows + Tile - 1) / Tile) * tileCols;
        int threads = Grid.DimX * Group.DimX, run = Math.Max(1, args.TilesPerPass);
        float* bias = w + args.In * args.Out;
        for (int first = Grid.GlobalIndex.X * run; first < tiles; first += threads * run)
        {
            for (int t = first, last = Math.Min(first + run, tiles); t < last; t++)
            {
                int r0 = t / tileCols * Tile, c0 = t % tileCols * Tile;
                if (r0 + Tile <= args.Rows && c0 + Tile <= args.Out)
                {
                    ForwardTile(x + r0 * args.In, w + c0, bias + c0, r0, c0, z, o, args);
                }
                else
                {
                    ForwardEdgeTile(x, w, bias, r0, c0, z, o, args);
                }
            }
        }
    }

    /// <summary>
    /// A whole 4 × 4 tile of <see cref="Forward"/>: rows of X from <paramref name="x"/>, columns of W and b from
    /// <paramref name="w"/> and <paramref name="bias"/>, at constant offsets; inlined into the kernel's tile loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void ForwardTile(float* x, float* w, float* bias, int r0, int c0, float* z, float* o, DenseArgs args)
    {
        int inputs = args.In, outputs = args.Out;
        float* x1 = x + inputs, x2 = x1 + inputs, x3 = x2 + inputs;
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int k = 0; k < inputs; k++, w += outputs)
        {
            float b0 = w[0], b1 = w[1], b2 = w[2], b3 = w[3];
            float v = x[k];
            a00 += v * b0; a01 += v * b1; a02 += v * b2; a03 += v * b3;
            v = x1[k];
            a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
            v = x2[k];
            a20 += v * b0; a21 += v * b1; a22 += v * b2; a23 += v * b3;
            v = x3[k];
            a30 += v * b0; a31 += v * b1; a32 += v * b2; a33 += v * b3;
        }
        // Z first, as plain stores, then the epilogue over the tile (in L1) in a method of its own: with the activation
        // and dropout stores in the same method as this loop, the kernel measured ~1.5× slower on the CPU.
        float bias0 = bias[0], bias1 = bias[1], bias2 = bias[2], bias3 = bias[3];
        float* row = o + r0 * outputs + c0;
        row[0] = a00 + bias0; row[1] = a01 + bias1; row[2] = a02 + bias2; row[3] = a03 + bias3;
        row += outputs;
        row[0] = a10 + bias0; row[1] = a11 + bias1; row[2] = a12 + bias2; row[3] = a13 + bias3;
        row += outputs;
        row[0] = a20 + bias0; row[1] = a21 + bias1; row[2] = a22 + bias2; row[3] = a23 + bias3;
        row += outputs;
        row[0] = a30 + bias0; row[1] = a31 + bias1; row[2] = a32 + bias2; row[3] = a33 + bias3;
        ForwardEpilogue(r0, c0, z, o, args);
    }

    /// <summary>Turns a whole tile of Z, stored in the output, into the output (and keeps Z where wanted).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void ForwardEpilogue(int r0, int c0, float* z, float* o, DenseArgs args)
    {
        if (args.Activation > 1 || args.DropoutRate > 0f)
        {
            for (int r = r0; r < r0 + Tile; r++)
            {
                float* row = o + r * args.Out + c0;
                StoreForward(r, c0, row[0], row[1], row[2], row[3], z, o, args);
            }
            return;
        }
        bool relu = args.Activation == 1;
        if (z == null && !relu)
        {
            return;
        }
        for (int r = r0, index = r0 * args.Out + c0; r < r0 + Tile; r++, index += args.Out)
        {
            StoreForwardFast(index, o[index], o[index + 1], o[index + 2], o[index + 3], z, o, relu);
        }
    }

    /// <summary>
    /// A partial tile at the bottom or right edge: the same loop with loads clamped to the last valid row or column
    /// (their results are discarded) and guarded stores. No slow scalar path.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void ForwardEdgeTile(float* x, float* w, float* bias, int r0, int c0, float* z, float* o, DenseArgs args)
    {
        float* x0 = x + Math.Min(r0, args.Rows - 1) * args.In, x1 = x + Math.Min(r0 + 1, args.Rows - 1) * args.In;
        float* x2 = x + Math.Min(r0 + 2, args.Rows - 1) * args.In, x3 = x + Math.Min(r0 + 3, args.Rows - 1) * args.In;
        int j1 = Math.Min(c0 + 1, args.Out - 1), j2 = Math.Min(c0 + 2, args.Out - 1), j3 = Math.Min(c0 + 3, args.Out - 1);
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        float* wk = w;
        for (int k = 0; k < args.In; k++, wk += args.Out)
        {
            float b0 = wk[c0], b1 = wk[j1], b2 = wk[j2], b3 = wk[j3];
            float v = x0[k];
            a00 += v * b0; a01 += v * b1; a02 += v * b2; a03 += v * b3;
            v = x1[k];
            a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
            v = x2[k];
            a20 += v * b0; a21 += v * b1; a22 += v * b2; a23 += v * b3;
            v = x3[k];
            a30 += v * b0; a31 += v * b1; a32 += v * b2; a33 += v * b3;
        }
        float bias0 = bias[c0], bias1 = bias[j1], bias2 = bias[j2], bias3 = bias[j3];
        StoreForward(r0, c0, a00 + bias0, a01 + bias1, a02 + bias2, a03 + bias3, z, o, args);
        StoreForward(r0 + 1, c0, a10 + bias0, a11 + bias1, a12 + bias2, a13 + bias3, z, o, args);
        StoreForward(r0 + 2, c0, a20 + bias0, a21 + bias1, a22 + bias2, a23 + bias3, z, o, args);
        StoreForward(r0 + 3, c0, a30 + bias0, a31 + bias1, a32 + bias2, a33 + bias3, z, o, args);
    }

    /// <summary>
    /// Backward through one layer, in one launch: [∂W; ∂b] = [X, 1]ᵀ · gradOut over the layer's gradient block, and, unless
    /// <paramref name="gradIn"/> is empty (the first layer), gradIn = (gradOut · Wᵀ) ⊙ f′(Z_prev) ⊙ mask_prev, where f and
    /// the mask are the previous layer's activation and dropout (<see cref="DenseArgs.Activation"/>,
    /// <see cref="DenseArgs.DropoutSeed"/>). The two products write disjoint outputs, so each is split over all threads
    /// on its own (<see cref="DenseArgs.TilesPerPass"/>, <see cref="DenseArgs.InputTilesPerPass"/>) with no barrier.
    /// </summary>
    public static unsafe void Backward(ArrayView<float> input, ArrayView<float> gradOut, ArrayView<float> parameters,
        ArrayView<float> previousPreActivation, ArrayView<float> gradParameters, ArrayView<float> gradIn, DenseArgs args)
    {
        float* g = Address(gradOut), d = Address(gradIn);
        WeightGradient(Address(input), g, Address(gradParameters), args);
        if (d != null)
        {
            InputGradient(g, Address(parameters), Address(previousPreActivation), d, args);
        }
    }

    /// <summary>
    /// [∂W; ∂b] = [X, 1]ᵀ · gradOut. The first tiles cover ∂W (4 × 4 blocks over in × out, summing over rows); the
    /// remaining tiles each sum four columns of gradOut into ∂b.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void WeightGradient(float* x, float* g, float* d, DenseArgs args)
    {
        int tileCols = (args.Out + Tile - 1) / Tile;
        int weightTiles = ((args.In + Tile - 1) / Tile) * tileCols, tiles = weightTiles + tileCols;
        int threads = Grid.DimX * Group.DimX, run = Math.Max(1, args.TilesPerPass);
        for (int first = Grid.GlobalIndex.X * run; first < tiles; first += threads * run)
        {
            for (int t = first, last = Math.Min(first + run, tiles); t < last; t++)
            {
                int k0 = t / tileCols * Tile, c0 = t % tileCols * Tile;
                if (t >= weightTiles)
                {
                    BiasTile(g, d, (t - weightTiles) * Tile, args);
                }
                else if (k0 + Tile <= args.In && c0 + Tile <= args.Out)
                {
                    WeightTile(x + k0, g + c0, d + k0 * args.Out + c0, args);
                }
                else
                {
                    WeightEdgeTile(x, g, d, k0, c0, args);
                }
            }
        }
    }

    /// <summary>A whole 4 × 4 tile of ∂W at constant offsets, inlined into the loop (as <see cref="ForwardTile"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void WeightTile(float* x, float* g, float* d, DenseArgs args)
    {
        int inputs = args.In, outputs = args.Out;
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int r = 0; r < args.Rows; r++, x += inputs, g += outputs)
        {
            float b0 = g[0], b1 = g[1], b2 = g[2], b3 = g[3];
            float v = x[0];
            a00 += v * b0; a01 += v * b1; a02 += v * b2; a03 += v * b3;
            v = x[1];
            a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
            v = x[2];
            a20 += v * b0; a21 += v * b1; a22 += v * b2; a23 += v * b3;
            v = x[3];
            a30 += v * b0; a31 += v * b1; a32 += v * b2; a33 += v * b3;
        }
        d[0] = a00; d[1] = a01; d[2] = a02; d[3] = a03;
        d += outputs;
        d[0] = a10; d[1] = a11; d[2] = a12; d[3] = a13;
        d += outputs;
        d[0] = a20; d[1] = a21; d[2] = a22; d[3] = a23;
        d += outputs;
        d[0] = a30; d[1] = a31; d[2] = a32; d[3] = a33;
    }

    /// <summary>A partial tile of ∂W: loads clamped to the last valid column, stores guarded.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void WeightEdgeTile(float* x, float* g, float* d, int k0, int c0, DenseArgs args)
    {
        int k1 = Math.Min(k0 + 1, args.In - 1), k2 = Math.Min(k0 + 2, args.In - 1), k3 = Math.Min(k0 + 3, args.In - 1);
        int j1 = Math.Min(c0 + 1, args.Out - 1), j2 = Math.Min(c0 + 2, args.Out - 1), j3 = Math.Min(c0 + 3, args.Out - 1);
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        float* xr = x, gr = g;
        for (int r = 0; r < args.Rows; r++, xr += args.In, gr += args.Out)
        {
            float b0 = gr[c0], b1 = gr[j1], b2 = gr[j2], b3 = gr[j3];
            float v = xr[k0];
            a00 += v * b0; a01 += v * b1; a02 += v * b2; a03 += v * b3;
            v = xr[k1];
            a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
            v = xr[k2];
            a20 += v * b0; a21 += v * b1; a22 += v * b2; a23 += v * b3;
            v = xr[k3];
            a30 += v * b0; a31 += v * b1; a32 += v * b2; a33 += v * b3;
        }
        StoreWeights(k0, c0, a00, a01, a02, a03, d, args);
        StoreWeights(k0 + 1, c0, a10, a11, a12, a13, d, args);
        StoreWeights(k0 + 2, c0, a20, a21, a22, a23, d, args);
        StoreWeights(k0 + 3, c0, a30, a31, a32, a33, d, args);
    }

    /// <summary>
    /// gradIn = (gradOut · Wᵀ) ⊙ f′(Z_prev) ⊙ mask_prev, 4 × 4 tiles over rows × in. Whole tiles store the product and
    /// apply f′ and the mask out of line (<see cref="InputEpilogue"/>), as <see cref="Forward"/> does.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void InputGradient(float* g, float* w, float* z, float* d, DenseArgs args)
    {
        int tileCols = (args.In + Tile - 1) / Tile;
        int tiles = ((args.Rows + Tile - 1) / Tile) * tileCols;
        int threads = Grid.DimX * Group.DimX, run = Math.Max(1, args.InputTilesPerPass);
        bool epilogue = args.Activation != 0 || args.DropoutRate > 0f;
        for (int first = Grid.GlobalIndex.X * run; first < tiles; first += threads * run)
        {
            for (int t = first, last = Math.Min(first + run, tiles); t < last; t++)
            {
                int r0 = t / tileCols * Tile, k0 = t % tileCols * Tile;
                if (r0 + Tile > args.Rows || k0 + Tile > args.In)
                {
                    InputEdgeTile(g, w, z, d, r0, k0, args);
                    continue;
                }
                InputTile(g + r0 * args.Out, w + k0 * args.Out, d + r0 * args.In + k0, args);
                if (epilogue)
                {
                    InputEpilogue(r0, k0, z, d, args);
                }
            }
        }
    }

    /// <summary>A whole 4 × 4 tile of gradOut · Wᵀ, stored as is; inlined into the loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void InputTile(float* g0, float* w0, float* d, DenseArgs args)
    {
        int outputs = args.Out, inputs = args.In;
        float* g1 = g0 + outputs, g2 = g1 + outputs, g3 = g2 + outputs;
        float* w1 = w0 + outputs, w2 = w1 + outputs, w3 = w2 + outputs;
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int j = 0; j < outputs; j++)
        {
            float b0 = w0[j], b1 = w1[j], b2 = w2[j], b3 = w3[j];
            float v = g0[j];
            a00 += v * b0; a01 += v * b1; a02 += v * b2; a03 += v * b3;
            v = g1[j];
            a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
            v = g2[j];
            a20 += v * b0; a21 += v * b1; a22 += v * b2; a23 += v * b3;
            v = g3[j];
            a30 += v * b0; a31 += v * b1; a32 += v * b2; a33 += v * b3;
        }
        d[0] = a00; d[1] = a01; d[2] = a02; d[3] = a03;
        d += inputs;
        d[0] = a10; d[1] = a11; d[2] = a12; d[3] = a13;
        d += inputs;
        d[0] = a20; d[1] = a21; d[2] = a22; d[3] = a23;
        d += inputs;
        d[0] = a30; d[1] = a31; d[2] = a32; d[3] = a33;
    }

    /// <summary>Applies f′(Z_prev) and the dropout mask to a whole tile of gradIn in place.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void InputEpilogue(int r0, int k0, float* z, float* d, DenseArgs args)
    {
        if (args.Activation > 1 || args.DropoutRate > 0f)
        {
            for (int r = r0; r < r0 + Tile; r++)
            {
                float* row = d + r * args.In + k0;
                StoreBackward(r, k0, row[0], row[1], row[2], row[3], z, d, args);
            }
            return;
        }
        for (int r = r0, index = r0 * args.In + k0; r < r0 + Tile; r++, index += args.In)
        {
            StoreBackwardFast(index, d[index], d[index + 1], d[index + 2], d[index + 3], z, d, true);
        }
    }

    /// <summary>A partial tile of gradIn: loads clamped to the last valid row or column, stores guarded.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void InputEdgeTile(float* g, float* w, float* z, float* d, int r0, int k0, DenseArgs args)
    {
        float* g0 = g + Math.Min(r0, args.Rows - 1) * args.Out, g1 = g + Math.Min(r0 + 1, args.Rows - 1) * args.Out;
        float* g2 = g + Math.Min(r0 + 2, args.Rows - 1) * args.Out, g3 = g + Math.Min(r0 + 3, args.Rows - 1) * args.Out;
        float* w0 = w + k0 * args.Out, w1 = w + Math.Min(k0 + 1, args.In - 1) * args.Out;
        float* w2 = w + Math.Min(k0 + 2, args.In - 1) * args.Out, w3 = w + Math.Min(k0 + 3, args.In - 1) * args.Out;
        float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
        float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
        for (int j = 0; j < args.Out; j++)
        {
            float b0 = w0[j], b1 = w1[j], b2 = w2[j], b3 = w3[j];
            float v = g0[j];
            a00 += v * b0; a01 += v * b1; a02 += v * b2; a03 += v * b3;
            v = g1[j];
            a10 += v * b0; a11 += v * b1; a12 += v * b2; a13 += v * b3;
            v = g2[j];
            a20 += v * b0; a21 += v * b1; a22 += v * b2; a23 += v * b3;
            v = g3[j];
            a30 += v * b0; a31 += v * b1; a32 += v * b2; a33 += v * b3;
        }
        StoreBackward(r0, k0, a00, a01, a02, a03, z, d, args);
        StoreBackward(r0 + 1, k0, a10, a11, a12, a13, z, d, args);
        StoreBackward(r0 + 2, k0, a20, a21, a22, a23, z, d, args);
        StoreBackward(r0 + 3, k0, a30, a31, a32, a33, z, d, args);
    }

    /// <summary>Copies rows <c>permutation[i]</c> of <paramref name="source"/> to row i of <paramref name="destination"/>.</summary>
    public static unsafe void GatherRows(ArrayView<float> source, ArrayView<float> destination, ArrayView<int> permutation, int width)
    {
        float* from = Address(source), to = Address(destination);
        int* rows = Address(permutation);
        int n = permutation.IntLength * width;
        int stride = Grid.DimX * Group.DimX;
        for (int i = Grid.GlobalIndex.X; i < n; i += stride)
        {
            int row = i / width;
            to[i] = from[rows[row] * width + i - row * width];
        }
    }

    /// <summary>A uniform number in [0, 1) from (seed, index): a stateless hash, so forward and backward agree.</summary>
    public static float DropoutUniform(uint seed, int index)
    {
        uint h = seed ^ ((uint)index * 0x9E3779B9u);
        h ^= h >> 16;
        h *= 0x7FEB352Du;
        h ^= h >> 15;
        h *= 0x846CA68Bu;
        h ^= h >> 16;
        return (h >> 8) * (1f / 16777216f);
    }

    private static unsafe void StoreForward(int r, int c, float z0, float z1, float z2, float z3,
        float* preActivation, float* output, DenseArgs args)
    {
        if (r >= args.Rows)
        {
            return;
        }
        if (c + 3 < args.Out && args.Activation <= 1 && args.DropoutRate <= 0f)
        {
            StoreForwardFast(r * args.Out + c, z0, z1, z2, z3, preActivation, output, args.Activation == 1);
            return;
        }
        StoreOne(r, c, z0, preActivation, output, args);
        if (c + 3 < args.Out)
        {
            StoreOne(r, c + 1, z1, preActivation, output, args);
            StoreOne(r, c + 2, z2, preActivation, output, args);
            StoreOne(r, c + 3, z3, preActivation, output, args);
            return;
        }
        if (c + 1 < args.Out)
        {
            StoreOne(r, c + 1, z1, preActivation, output, args);
        }
        if (c + 2 < args.Out)
        {
            StoreOne(r, c + 2, z2, preActivation, output, args);
        }
    }

    /// <summary>
    /// Four whole outputs of an identity or ReLU layer without dropout, written inline: the general per-element path
    /// (an activation switch and a dropout test per element) measured ~1.5× the time of the product itself on the CPU.
    /// Same values as <see cref="StoreOne"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreForwardFast(int index, float z0, float z1, float z2, float z3, float* preActivation, float* output, bool relu)
    {
        if (preActivation != null)
        {
            float* zp = preActivation + index;
            zp[0] = z0;
            zp[1] = z1;
            zp[2] = z2;
            zp[3] = z3;
        }
        float* o = output + index;
        o[0] = relu ? (z0 > 0f ? z0 : 0f) : z0;
        o[1] = relu ? (z1 > 0f ? z1 : 0f) : z1;
        o[2] = relu ? (z2 > 0f ? z2 : 0f) : z2;
        o[3] = relu ? (z3 > 0f ? z3 : 0f) : z3;
    }

    /// <summary>Four whole input gradients under an identity or ReLU layer without dropout; same values as <see cref="StoreBackwardOne"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreBackwardFast(int index, float g0, float g1, float g2, float g3, float* previousPreActivation, float* gradIn, bool relu)
    {
        float* d = gradIn + index;
        if (!relu)
        {
            d[0] = g0;
            d[1] = g1;
            d[2] = g2;
            d[3] = g3;
            return;
        }
        float* z = previousPreActivation + index;
        d[0] = g0 * (z[0] > 0f ? 1f : 0f);
        d[1] = g1 * (z[1] > 0f ? 1f : 0f);
        d[2] = g2 * (z[2] > 0f ? 1f : 0f);
        d[3] = g3 * (z[3] > 0f ? 1f : 0f);
    }

    private static unsafe void StoreOne(int r, int c, float z, float* preActivation, float* output, DenseArgs args)
    {
        int index = r * args.Out + c;
        if (preActivation != null)
        {
            preActivation[index] = z;
        }
        float a = ActivationMath.Apply(args.Activation, z);
        if (args.DropoutRate > 0f)
        {
            a = DropoutUniform(args.DropoutSeed, index) < args.DropoutRate ? 0f : a / (1f - args.DropoutRate);
        }
        output[index] = a;
    }

    private static unsafe void StoreBackward(int r, int k, float g0, float g1, float g2, float g3,
        float* previousPreActivation, float* gradIn, DenseArgs args)
    {
        if (r >= args.Rows)
        {
            return;
        }
        if (k + 3 < args.In && args.Activation <= 1 && args.DropoutRate <= 0f)
        {
            StoreBackwardFast(r * args.In + k, g0, g1, g2, g3, previousPreActivation, gradIn, args.Activation == 1);
            return;
        }
        StoreBackwardOne(r, k, g0, previousPreActivation, gradIn, args);
        if (k + 1 < args.In)
        {
            StoreBackwardOne(r, k + 1, g1, previousPreActivation, gradIn, args);
        }
        if (k + 2 < args.In)
        {
            StoreBackwardOne(r, k + 2, g2, previousPreActivation, gradIn, args);
        }
        if (k + 3 < args.In)
        {
            StoreBackwardOne(r, k + 3, g3, previousPreActivation, gradIn, args);
        }
    }

    private static unsafe void StoreWeights(int k, int c, float g0, float g1, float g2, float g3, float* gradParameters, DenseArgs args)
    {
        if (k >= args.In)
        {
            return;
        }
        int o = k * args.Out + c;
        gradParameters[o] = g0;
        if (c + 1 < args.Out)
        {
            gradParameters[o + 1] = g1;
        }
        if (c + 2 < args.Out)
        {
            gradParameters[o + 2] = g2;
        }
        if (c + 3 < args.Out)
        {
            gradParameters[o + 3] = g3;
        }
    }

    /// <summary>∂b for columns c0 … c0 + 3: column sums of gradOut.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe void BiasTile(float* gradOut, float* gradParameters, int c0, DenseArgs args)
    {
        int j1 = Math.Min(c0 + 1, args.Out - 1), j2 = Math.Min(c0 + 2, args.Out - 1), j3 = Math.Min(c0 + 3, args.Out - 1);
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int r = 0, g = 0; r < args.Rows; r++, g += args.Out)
        {
            s0 += gradOut[g + c0];
            s1 += gradOut[g + j1];
            s2 += gradOut[g + j2];
            s3 += gradOut[g + j3];
        }
        int o = args.In * args.Out + c0;
        gradParameters[o] = s0;
        if (c0 + 1 < args.Out)
        {
            gradParameters[o + 1] = s1;
        }
        if (c0 + 2 < args.Out)
        {
            gradParameters[o + 2] = s2;
        }
        if (c0 + 3 < args.Out)
        {
            gradParameters[o + 3] = s3;
        }
    }

    private static unsafe void StoreBackwardOne(int r, int k, float g, float* previousPreActivation, float* gradIn, DenseArgs args)
    {
        int index = r * args.In + k;
        float d = g * ActivationMath.Derivative(args.Activation, previousPreActivation[index]);
        if (args.DropoutRate > 0f)
        {
            d = DropoutUniform(args.DropoutSeed, index) < args.DropoutRate ? 0f : d / (1f - args.DropoutRate);
        }
        gradIn[index] = d;
    }
}

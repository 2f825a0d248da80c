/* winograd_tables.h - written by tools/winograd_matrices.py; do not edit.
 * The transforms of Winograd's F(m, r), derived by Toom-Cook from the
 * points named with each; Y = AT [(G g GT) . (BT d B)] A. */
#ifndef CNNKIT_WINOGRAD_TABLES_H
#define CNNKIT_WINOGRAD_TABLES_H

/* F(2x2, 3x3): points 0, 1, -1 and infinity; float32 error 8.1e-08 of the terms' magnitude sum at C = 256. */
static const float wino_F2_3_AT[2][4] = {
    {1.0f, 1.0f, 1.0f, 0.0f},
    {0.0f, 1.0f, -1.0f, 1.0f}};
static const float wino_F2_3_G[4][3] = {
    {-1.0f, 0.0f, 0.0f},
    {0.5f, 0.5f, 0.5f},
    {0.5f, -0.5f, 0.5f},
    {0.0f, 0.0f, 1.0f}};
static const float wino_F2_3_BT[4][4] = {
    {-1.0f, 0.0f, 1.0f, 0.0f},
    {0.0f, 1.0f, 1.0f, 0.0f},
    {0.0f, -1.0f, 1.0f, 0.0f},
    {0.0f, -1.0f, 0.0f, 1.0f}};

/* F(4x4, 3x3): points 0, 1, -1, 1/2, -2 and infinity; float32 error 6.0e-07 of the terms' magnitude sum at C = 256. */
static const float wino_F4_3_AT[4][6] = {
    {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f},
    {0.0f, 1.0f, -1.0f, 0.5f, -2.0f, 0.0f},
    {0.0f, 1.0f, 1.0f, 0.25f, 4.0f, 0.0f},
    {0.0f, 1.0f, -1.0f, 0.125f, -8.0f, 1.0f}};
static const float wino_F4_3_G[6][3] = {
    {1.0f, 0.0f, 0.0f},
    {0.3333333333333333f, 0.3333333333333333f, 0.3333333333333333f},
    {-0.3333333333333333f, 0.3333333333333333f, -0.3333333333333333f},
    {-1.0666666666666667f, -0.5333333333333333f, -0.26666666666666666f},
    {0.06666666666666667f, -0.13333333333333333f, 0.26666666666666666f},
    {0.0f, 0.0f, 1.0f}};
static const float wino_F4_3_BT[6][6] = {
    {1.0f, -1.5f, -2.0f, 1.5f, 1.0f, 0.0f},
    {0.0f, -1.0f, 0.5f, 2.5f, 1.0f, 0.0f},
    {0.0f, 1.0f, -2.5f, 0.5f, 1.0f, 0.0f},
    {0.0f, -2.0f, -1.0f, 2.0f, 1.0f, 0.0f},
    {0.0f, 0.5f, -1.0f, -0.5f, 1.0f, 0.0f},
    {0.0f, 1.0f, -1.5f, -2.0f, 1.5f, 1.0f}};

/* F(2x2, 5x5): points 0, 1, -1, 1/2, -2 and infinity; float32 error 2.7e-07 of the terms' magnitude sum at C = 256. */
static const float wino_F2_5_AT[2][6] = {
    {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f},
    {0.0f, 1.0f, -1.0f, 0.5f, -2.0f, 1.0f}};
static const float wino_F2_5_G[6][5] = {
    {1.0f, 0.0f, 0.0f, 0.0f, 0.0f},
    {0.3333333333333333f, 0.3333333333333333f, 0.3333333333333333f, 0.3333333333333333f, 0.3333333333333333f},
    {-0.3333333333333333f, 0.3333333333333333f, -0.3333333333333333f, 0.3333333333333333f, -0.3333333333333333f},
    {-1.0666666666666667f, -0.5333333333333333f, -0.26666666666666666f, -0.13333333333333333f, -0.06666666666666667f},
    {0.06666666666666667f, -0.13333333333333333f, 0.26666666666666666f, -0.5333333333333333f, 1.0666666666666667f},
    {0.0f, 0.0f, 0.0f, 0.0f, 1.0f}};
static const float wino_F2_5_BT[6][6] = {
    {1.0f, -1.5f, -2.0f, 1.5f, 1.0f, 0.0f},
    {0.0f, -1.0f, 0.5f, 2.5f, 1.0f, 0.0f},
    {0.0f, 1.0f, -2.5f, 0.5f, 1.0f, 0.0f},
    {0.0f, -2.0f, -1.0f, 2.0f, 1.0f, 0.0f},
    {0.0f, 0.5f, -1.0f, -0.5f, 1.0f, 0.0f},
    {0.0f, 1.0f, -1.5f, -2.0f, 1.5f, 1.0f}};

#endif
